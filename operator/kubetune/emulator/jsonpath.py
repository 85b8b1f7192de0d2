"""Kubernetes JSONPath, as kube-apiserver evaluates a CRD's printer columns.

kube-apiserver runs each `additionalPrinterColumns[].jsonPath` through client-go's
`k8s.io/client-go/util/jsonpath` (missing keys allowed) and prints the first result. Printer
columns commonly filter, e.g. `.status.conditions[?(@.type=="Ready")].status`, so a plain
dotted-path walk shows such columns empty although a real cluster fills them.

    find_results({"a": [{"t": "x", "v": 1}]}, '.a[?(@.t=="x")].v')   # [1]

Covered, with client-go's semantics: fields (`.a`, `['a']`, `.*`), indexes and slices
(`[0]`, `[-1]`, `[1:3]`, `[::2]`, `[*]`), recursive descent (`..a`), filters with
`==`, `!=`, `<`, `>`, `<=`, `>=` against a quoted string, a number, true/false or another
`@.path`, and existence (`[?(@.a)]`). Not covered: unions (`[a,b]`) and range templates;
they raise `JsonPathError` (kube-apiserver's cell is then empty too, for a path it refused).
"""

from __future__ import annotations

import json
import re
from typing import Any


class JsonPathError(ValueError):
    """A path this evaluator cannot parse, or a comparison client-go refuses."""


_FILTER = re.compile(r"\?\((.*)\)$", re.S)
_COMPARISON = re.compile(r"^(.*?)\s*(==|!=|<=|>=|<|>)\s*(.*)$", re.S)
_SLICE = re.compile(r"^(-?\d*)(?::(-?\d*))?(?::(-?\d*))?$")


def find_results(obj: Any, path: str) -> list[Any]:
    """Every value `path` selects in `obj`, in order (empty when nothing matches)."""
    text = path.strip()
    if text.startswith("{") and text.endswith("}"):
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
    values = [obj]
    for step in _steps(text):
        values = step(values)
    return values


def _steps(text: str) -> list:
    steps, i = [], 0
    while i < len(text):
        if text.startswith("..", i):
            steps.append(_descendants)
            # What follows (".name" or "[...]") is the step applied to every descendant.
            i += 2 if text[i + 2:i + 3] == "[" else 1
        elif text[i] == ".":
            end = i + 1
            while end < len(text) and text[end] not in ".[":
                end += 1
            name = text[i + 1:end]
            if name:
                steps.append(_wildcard if name == "*" else _field(name))
            i = end
        elif text[i] == "[":
            end = _closing_bracket(text, i)
            steps.append(_bracket(text[i + 1:end].strip()))
            i = end + 1
        else:
            raise JsonPathError(f"unexpected {text[i]!r} at {i} in {text!r}")
    return steps


def _closing_bracket(text: str, start: int) -> int:
    depth, quote = 0, None
    for i in range(start, len(text)):
        char = text[i]
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == "[":
            depth += 1
        elif char == "]":
            depth -= 1
            if depth == 0:
                return i
    raise JsonPathError(f"unclosed [ in {text!r}")


def _bracket(inner: str):
    if inner == "*":
        return _wildcard
    if len(inner) >= 2 and inner[0] == inner[-1] and inner[0] in "'\"":
        return _field(inner[1:-1])
    if (match := _FILTER.match(inner)) is not None:
        return _filter(match.group(1).strip())
    if (match := _SLICE.match(inner)) is not None:
        return _index(*match.groups(), is_slice=":" in inner)
    raise JsonPathError(f"unsupported [{inner}]")


def _field(name: str):
    # client-go's evalField: only maps have fields; a missing key selects nothing.
    def step(values: list[Any]) -> list[Any]:
        return [value[name] for value in values if isinstance(value, dict) and name in value]
    return step


def _wildcard(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        if isinstance(value, dict):
            out += [value[key] for key in sorted(value)]  # Go's MapKeys, sorted by client-go
        elif isinstance(value, list):
            out += value
    return out


def _descendants(values: list[Any]) -> list[Any]:
    out: list[Any] = []
    for value in values:
        out.append(value)
        children = ([value[key] for key in sorted(value)] if isinstance(value, dict)
                    else value if isinstance(value, list) else [])
        out += _descendants(children)
    return out


def _index(start: str | None, stop: str | None, step: str | None, is_slice: bool):
    def step_fn(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                raise JsonPathError("not an array or slice")
            if not is_slice:
                index = int(start) + (len(value) if int(start) < 0 else 0)
                if 0 <= index < len(value):  # out of range: nothing (missing keys allowed)
                    out.append(value[index])
                continue
            out += value[slice(int(start) if start else None, int(stop) if stop else None,
                               int(step) if step else None)]
        return out
    return step_fn


def _filter(expression: str):
    match = _COMPARISON.match(expression)
    left, operator, right = match.groups() if match else (expression, "exists", "")

    def operand(element: Any, text: str) -> list[Any]:
        text = text.strip()
        if text.startswith("@"):
            return find_results(element, text[1:])
        return [_literal(text)]

    def step(values: list[Any]) -> list[Any]:
        out: list[Any] = []
        for value in values:
            if not isinstance(value, list):
                raise JsonPathError("not an array or slice and cannot be filtered")
            for element in value:
                lefts = operand(element, left)
                if operator == "exists":
                    if lefts:
                        out.append(element)
                    continue
                rights = operand(element, right)
                if not lefts or not rights:
                    continue
                if len(lefts) > 1 or len(rights) > 1:
                    raise JsonPathError("can only compare one element at a time")
                if _compare(lefts[0], operator, rights[0]):
                    out.append(element)
        return out
    return step


def _literal(text: str) -> Any:
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            raise JsonPathError(f"unrecognized literal {text!r}") from None


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, float):
        return "float"
    if isinstance(value, str):
        return "string"
    return "other"


def _compare(left: Any, operator: str, right: Any) -> bool:
    # Go's text/template comparisons: the same basic kind only (int 1 never equals 1.0).
    if _kind(left) != _kind(right) or _kind(left) == "other":
        raise JsonPathError(f"incompatible types for comparison: {left!r} {operator} {right!r}")
    if operator in ("==", "!="):
        return (left == right) == (operator == "==")
    if _kind(left) == "bool":
        raise JsonPathError("invalid type for comparison")
    return {"<": left < right, ">": left > right,
            "<=": left <= right, ">=": left >= right}[operator]


def to_text(value: Any) -> str:
    """client-go's PrintResults of one value (a string column's cell): strings as they are,
    booleans and numbers as Go prints them, objects and arrays as JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, separators=(",", ":"))
    return str(value)
