"""Field-level validation errors, worded and shaped as kube-apiserver words them.

A port of the parts of k8s.io/apimachinery/pkg/util/validation/field/errors.go that reach
the client: `Error.ErrorBody()` ("Invalid value: -1: ..."), the `StatusCause` each error
becomes, and `errors.NewInvalid` (k8s.io/apimachinery/pkg/api/errors), which joins them into
the 422 `Status` ("Job.batch \"x\" is invalid: [a: ..., b: ...]"). kubectl and clients show
these messages to users, so they are kept byte for byte where the source allows.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from kubetune.emulator.errors import ApiError

# ErrorType (the StatusCause reason) -> its String() in field/errors.go.
_TYPE_WORDS = {
    "FieldValueNotFound": "Not found",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
    "FieldValueInvalid": "Invalid value",
    "FieldValueNotSupported": "Unsupported value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueTooLong": "Too long",
    "FieldValueTooMany": "Too many",
    "FieldValueTooShort": "Too short",
    "InternalError": "Internal error",
    "FieldValueTypeInvalid": "Invalid value",
}
# These types print no bad value, only the type's words and the detail.
_VALUELESS = {"FieldValueRequired", "FieldValueForbidden", "FieldValueTooLong",
              "FieldValueTooShort", "InternalError"}
OMIT = object()  # field.omitValue: print the type's words without a value


def go_value(value: Any) -> str:
    """How Go's `%v` prints a JSON scalar (int64, float64, bool) in an error message."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e21:
            return str(int(value))
        return repr(value)  # the shortest round-trip form, as Go's %v prints it (1e-05, 0.5)
    return str(value)


def go_quote(text: str) -> str:
    """Go's `%q`: a double-quoted string with Go escapes (close to JSON's for text)."""
    return json.dumps(text, ensure_ascii=False)


@dataclass(frozen=True)
class FieldError:
    """One `field.Error`: `type` is its ErrorType (the cause's reason), `field` its path."""

    type: str
    field: str
    bad_value: Any = OMIT
    detail: str = ""

    def body(self) -> str:
        """`ErrorBody()`: the message without the field path."""
        words = _TYPE_WORDS[self.type]
        if self.type in _VALUELESS or self.bad_value is OMIT:
            text = words
        elif isinstance(self.bad_value, str):
            text = f"{words}: {go_quote(self.bad_value)}"
        elif self.bad_value is None or isinstance(self.bad_value, dict | list):
            text = f"{words}: {json.dumps(self.bad_value, separators=(',', ':'))}"
        else:
            text = f"{words}: {go_value(self.bad_value)}"
        return f"{text}: {self.detail}" if self.detail else text

    def __str__(self) -> str:
        return f"{self.field}: {self.body()}"

    def cause(self) -> dict[str, str]:
        return {"reason": self.type, "message": self.body(), "field": self.field}


def required(path: str, detail: str = "") -> FieldError:
    return FieldError("FieldValueRequired", path, "", detail)


def invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueInvalid", path, value, detail)


def type_invalid(path: str, value: Any, detail: str) -> FieldError:
    return FieldError("FieldValueTypeInvalid", path, value, detail)


def not_supported(path: str, value: Any, allowed: list[Any]) -> FieldError:
    quoted = ", ".join(go_quote(v if isinstance(v, str) else json.dumps(v)) for v in allowed)
    return FieldError("FieldValueNotSupported", path, value,
                      f"supported values: {quoted}" if allowed else "")


def forbidden(path: str, detail: str) -> FieldError:
    return FieldError("FieldValueForbidden", path, "", detail)


def duplicate(path: str, value: Any) -> FieldError:
    return FieldError("FieldValueDuplicate", path, value)


def too_long(path: str, max_length: int) -> FieldError:
    unit = "byte" if max_length == 1 else "bytes"
    return FieldError("FieldValueTooLong", path, "<value omitted>",
                      f"may not be more than {max_length} {unit}")


def too_many(path: str, actual: int, maximum: int) -> FieldError:
    unit = "item" if maximum == 1 else "items"
    return FieldError("FieldValueTooMany", path, actual, f"must have at most {maximum} {unit}")


def aggregate(field_errors: list[FieldError]) -> str:
    """`ErrorList.ToAggregate().Error()`: one message alone, several in brackets."""
    messages = list(dict.fromkeys(str(error) for error in field_errors))  # duplicates collapse
    return messages[0] if len(messages) == 1 else f"[{', '.join(messages)}]"


def invalid_object(group: str, kind: str, name: str, field_errors: list[FieldError]) -> ApiError:
    """`errors.NewInvalid(GroupKind, name, errs)`: the 422 `Status` with one cause per error."""
    qualified = f"{kind}.{group}" if group else kind
    field_errors = list({str(error): error for error in field_errors}.values())
    details: dict[str, Any] = {key: value for key, value in
                               (("name", name), ("group", group), ("kind", kind)) if value}
    details["causes"] = [error.cause() for error in field_errors]
    return ApiError(422, "Invalid", f"{qualified} {go_quote(name)} is invalid: {aggregate(field_errors)}",
                    details)
