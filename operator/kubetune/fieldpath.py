"""Dotted field paths of the rule tables (admission.rules, policies.rules), lists included.

`spec.model.uri` is a field; `spec.benchmarks[].uri` is the `uri` of every item of the list
`spec.benchmarks`.
"""

from __future__ import annotations

LIST = "[]."


class FieldPath:
    """Path properties for a frozen dataclass with a `field: str` (a mixin: no fields)."""

    field: str

    @property
    def path(self) -> tuple[str, ...]:
        """The field's keys from the root; a list key keeps its `[]`."""
        return tuple(self.field.split("."))

    @property
    def list_path(self) -> tuple[str, ...] | None:
        """Keys from the root to the list the field lies in, or None when it lies in none."""
        if LIST not in self.field:
            return None
        return tuple(self.field.split(LIST, 1)[0].split("."))

    @property
    def item_path(self) -> tuple[str, ...]:
        """Keys from the list item (or the root, outside lists) to the field."""
        if LIST not in self.field:
            return self.path
        return tuple(self.field.split(LIST, 1)[1].split("."))
