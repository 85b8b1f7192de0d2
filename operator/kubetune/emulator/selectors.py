"""Label and field selectors, parsed as kube-apiserver parses `labelSelector`/`fieldSelector`.

Label selector grammar (comma-separated requirements, ANDed)::

    key=value  key==value  key!=value  key in (a,b)  key notin (a,b)  key  !key

Field selectors support `=`, `==` and `!=` on dotted paths; `metadata.name` and
`metadata.namespace` are what every resource supports, other paths (e.g. `status.phase`)
are matched against the object as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

from kubetune.emulator.errors import bad_request

Predicate = Callable[[dict[str, Any]], bool]

_SET_REQUIREMENT = re.compile(r"^\s*([^\s!=(),]+)\s+(in|notin)\s*\(([^)]*)\)\s*$")
_EQUALITY_REQUIREMENT = re.compile(r"^\s*([^\s!=(),]+)\s*(==|=|!=)\s*([^\s!=(),]*)\s*$")
_EXISTS_REQUIREMENT = re.compile(r"^\s*(!?)\s*([^\s!=(),]+)\s*$")


def _split_requirements(text: str) -> list[str]:
    """Split on commas that are not inside `in (...)` parentheses."""
    parts, depth, current = [], 0, []
    for char in text:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [part for part in parts if part.strip()]


def _label_requirement(text: str) -> Callable[[Mapping[str, str]], bool]:
    if match := _SET_REQUIREMENT.match(text):
        key, operator, raw_values = match.groups()
        values = {value.strip() for value in raw_values.split(",") if value.strip()}
        if operator == "in":
            return lambda labels: labels.get(key) in values
        return lambda labels: labels.get(key) not in values
    if match := _EQUALITY_REQUIREMENT.match(text):
        key, operator, value = match.groups()
        if operator == "!=":
            return lambda labels: labels.get(key) != value
        return lambda labels: labels.get(key) == value
    if match := _EXISTS_REQUIREMENT.match(text):
        negated, key = match.groups()
        if negated:
            return lambda labels: key not in labels
        return lambda labels: key in labels
    raise bad_request(f"unable to parse requirement: {text!r}")


def parse_label_selector(text: str | None) -> Predicate:
    """Return a predicate over objects for a `labelSelector` query value."""
    if not text:
        return lambda obj: True
    requirements = [_label_requirement(part) for part in _split_requirements(text)]

    def matches(obj: dict[str, Any]) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(requirement(labels) for requirement in requirements)

    return matches


def _field_value(obj: dict[str, Any], path: str) -> str:
    value: Any = obj
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def parse_field_selector(text: str | None) -> Predicate:
    """Return a predicate over objects for a `fieldSelector` query value."""
    if not text:
        return lambda obj: True
    requirements: list[tuple[str, bool, str]] = []
    for part in _split_requirements(text):
        match = _EQUALITY_REQUIREMENT.match(part)
        if not match:
            raise bad_request(f"invalid field selector: {part!r}")
        path, operator, value = match.groups()
        requirements.append((path, operator != "!=", value))

    def matches(obj: dict[str, Any]) -> bool:
        return all(
            (_field_value(obj, path) == value) == wanted for path, wanted, value in requirements
        )

    return matches


def combine(*predicates: Predicate) -> Predicate:
    return lambda obj: all(predicate(obj) for predicate in predicates)


def label_selector_matches(selector: Mapping[str, Any] | None, labels: Mapping[str, str]) -> bool:
    """A metav1.LabelSelector object (matchLabels, matchExpressions) against labels, as
    apimachinery's LabelSelectorAsSelector: all must hold; empty selects everything."""
    selector = selector or {}
    if any(labels.get(k) != v for k, v in (selector.get("matchLabels") or {}).items()):
        return False
    for requirement in selector.get("matchExpressions") or []:
        key, values = requirement.get("key"), set(requirement.get("values") or [])
        held = {"In": key in labels and labels[key] in values,
                "NotIn": not (key in labels and labels[key] in values),
                "Exists": key in labels, "DoesNotExist": key not in labels}
        if not held.get(requirement.get("operator"), False):
            return False
    return True
