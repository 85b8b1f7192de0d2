"""Base classes shared by every API model.

Spec models are what users write: camelCase on the wire, unknown fields rejected, every
field documented (the descriptions become the CRD's text, so `kubectl explain` shows them).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from pydantic_core import PydanticCustomError


class SpecModel(BaseModel):
    """A part of a user-written spec: strict about unknown fields."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        validate_default=True,
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it is written to Kubernetes: camelCase, defaults explicit."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


class StatusModel(BaseModel):
    """A part of a status written by the operator or a trainer: tolerant when reading."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        use_attribute_docstrings=True,
    )

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


def cel(rule: str, message: str, field_path: str | None = None) -> dict[str, str]:
    """One CEL `x-kubernetes-validations` entry, checked by the API server.

    The same rule is also enforced in Python by a model validator, so that `kubetune
    validate` and the operator reject what the API server would.
    """
    entry = {"rule": rule, "message": message}
    if field_path:
        entry["fieldPath"] = field_path
    return entry


RULES_ERROR = "cross_field_rules"
"""pydantic error type of `raise_rule_problems`; its ctx["problems"] lists each problem."""


def raise_rule_problems(problems: list[tuple[str, str]]) -> None:
    """Raise every broken cross-field rule of one model at once, if any.

    Each problem is (path relative to the model, "" for the model itself; what must hold),
    so that `kubetune validate` reports each on its own line at its own path, as the API
    server reports each failed CEL rule at the rule's node (or its fieldPath).
    """
    if problems:
        summary = "; ".join(f"{path}: {message}" if path else message for path, message in problems)
        raise PydanticCustomError(RULES_ERROR, "{summary}",
                                  {"summary": summary, "problems": tuple(problems)})


IMMUTABLE = [cel("self == oldSelf", "is immutable once the job is created")]
"""Validation for spec sections that may not change after creation."""
