"""The ObjectMeta rules every object meets: name, generateName, labels, annotations.

Ports of k8s.io/apimachinery/pkg/util/validation/validation.go (IsDNS1123Subdomain,
IsDNS1123Label, IsDNS1035Label, IsQualifiedName, IsValidLabelValue) and
.../pkg/api/validation/objectmeta.go (ValidateObjectMetaAccessor): messages as the source
words them. https://kubernetes.io/docs/concepts/overview/working-with-objects/names/ and
.../labels/#syntax-and-character-set.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from kubetune.emulator import field_errors
from kubetune.emulator.field_errors import FieldError

_DNS1123_LABEL = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN = _DNS1123_LABEL + "(\\." + _DNS1123_LABEL + ")*"
_DNS1035_LABEL = "[a-z]([-a-z0-9]*[a-z0-9])?"
_QUALIFIED_NAME = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_LABEL_VALUE = "(" + _QUALIFIED_NAME + ")?"
_QUALIFIED_NAME_MESSAGE = ("must consist of alphanumeric characters, '-', '_' or '.', and must start and"
                           " end with an alphanumeric character")
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * 1024  # bytes, keys and values together


def _full(pattern: str) -> re.Pattern[str]:
    return re.compile(f"^(?:{pattern})$")


_RE_LABEL, _RE_SUBDOMAIN = _full(_DNS1123_LABEL), _full(_DNS1123_SUBDOMAIN)
_RE_1035, _RE_QUALIFIED, _RE_VALUE = _full(_DNS1035_LABEL), _full(_QUALIFIED_NAME), _full(_LABEL_VALUE)


def _max_len(length: int) -> str:
    return f"must be no more than {length} characters"


def regex_error(message: str, pattern: str, *examples: str) -> str:
    """validation.RegexError, byte for byte (its odd "',  or '" included)."""
    if not examples:
        return f"{message} (regex used for validation is '{pattern}')"
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{message} (e.g. {shown}regex used for validation is '{pattern}')"


def dns1123_subdomain(value: str) -> list[str]:
    errors = [_max_len(253)] if len(value) > 253 else []
    if not _RE_SUBDOMAIN.match(value):
        errors.append(regex_error(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or"
            " '.', and must start and end with an alphanumeric character", _DNS1123_SUBDOMAIN,
            "example.com"))
    return errors


def dns1123_label(value: str) -> list[str]:
    errors = [_max_len(63)] if len(value) > 63 else []
    if not _RE_LABEL.match(value):
        if _RE_SUBDOMAIN.match(value):
            errors.append("must not contain dots")
        else:
            errors.append(regex_error(
                "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-',"
                " and must start and end with an alphanumeric character", _DNS1123_LABEL,
                "my-name", "123-abc"))
    return errors


def dns1035_label(value: str) -> list[str]:
    errors = [_max_len(63)] if len(value) > 63 else []
    if not _RE_1035.match(value):
        errors.append(regex_error(
            "a DNS-1035 label must consist of lower case alphanumeric characters or '-', start with an"
            " alphabetic character, and end with an alphanumeric character", _DNS1035_LABEL,
            "my-name", "abc-123"))
    return errors


def qualified_name(value: str) -> list[str]:
    """IsQualifiedName: `[prefix/]name`, the syntax of label and annotation keys."""
    parts = value.split("/")
    errors: list[str] = []
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            errors.extend(f"prefix part {message}" for message in dns1123_subdomain(prefix))
    else:
        regex = regex_error(_QUALIFIED_NAME_MESSAGE, _QUALIFIED_NAME, "MyName", "my.name", "123-abc")
        return [f"a qualified name {regex} with an optional DNS subdomain prefix and '/'"
                " (e.g. 'example.com/MyName')"]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > 63:
        errors.append(f"name part {_max_len(63)}")
    if not _RE_QUALIFIED.match(name):
        errors.append("name part " + regex_error(_QUALIFIED_NAME_MESSAGE, _QUALIFIED_NAME,
                                                  "MyName", "my.name", "123-abc"))
    return errors


def label_value(value: str) -> list[str]:
    errors = [_max_len(63)] if len(value) > 63 else []
    if not _RE_VALUE.match(value):
        errors.append(regex_error(
            "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or"
            " '.', and must start and end with an alphanumeric character", _LABEL_VALUE,
            "MyValue", "my_value", "12345"))
    return errors


def validate_labels(labels: Any, path: str) -> list[FieldError]:
    """ValidateLabels: each key a qualified name, each value a label value (both at `path`)."""
    if not isinstance(labels, dict):
        return []
    found: list[FieldError] = []
    for key, value in labels.items():
        found.extend(field_errors.invalid(path, key, message) for message in qualified_name(key))
        if isinstance(value, str):
            found.extend(field_errors.invalid(path, value, message) for message in label_value(value))
    return found


def validate_annotations(annotations: Any, path: str) -> list[FieldError]:
    if not isinstance(annotations, dict):
        return []
    found = [field_errors.invalid(path, key, message)
             for key in annotations for message in qualified_name(key.lower())]
    size = sum(len(key.encode()) + len(str(value).encode()) for key, value in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        found.append(field_errors.too_long(path, TOTAL_ANNOTATION_SIZE_LIMIT))
    return found


NameRule = Callable[[str], list[str]]


def _mask_trailing_dash(prefix: str) -> str:
    """generateName prefixes may end in '-': a suffix follows (NameIsDNSSubdomain(prefix=true))."""
    return prefix[:-1] + "a" if len(prefix) > 1 and prefix.endswith("-") else prefix


def validate_object_meta(meta: dict[str, Any], name_rule: NameRule,
                         path: str = "metadata") -> list[FieldError]:
    """ValidateObjectMetaAccessor for a create or update (the namespace is checked by the caller)."""
    found: list[FieldError] = []
    generate_name = meta.get("generateName")
    if generate_name:
        found.extend(field_errors.invalid(f"{path}.generateName", generate_name, message)
                     for message in name_rule(_mask_trailing_dash(generate_name)))
    name = meta.get("name")
    if not name:
        found.append(field_errors.required(f"{path}.name", "name or generateName is required"))
    else:
        found.extend(field_errors.invalid(f"{path}.name", name, message) for message in name_rule(name))
    generation = meta.get("generation")
    if isinstance(generation, int) and generation < 0:
        found.append(field_errors.invalid(f"{path}.generation", generation,
                                          "must be greater than or equal to 0"))
    found.extend(validate_labels(meta.get("labels"), f"{path}.labels"))
    found.extend(validate_annotations(meta.get("annotations"), f"{path}.annotations"))
    found.extend(_validate_owner_references(meta.get("ownerReferences"), f"{path}.ownerReferences"))
    return found


def _validate_owner_references(references: Any, path: str) -> list[FieldError]:
    """ValidateOwnerReferences: apiVersion, kind, name and uid are required; one controller."""
    if not isinstance(references, list):
        return []
    found: list[FieldError] = []
    controllers = 0
    for reference in references:
        if not isinstance(reference, dict):
            continue
        if not reference.get("apiVersion"):
            found.append(field_errors.invalid(f"{path}.apiVersion", reference.get("apiVersion", ""),
                                              "version must not be empty"))
        if not reference.get("kind"):
            found.append(field_errors.invalid(f"{path}.kind", reference.get("kind", ""),
                                              "kind must not be empty"))
        if not reference.get("name"):
            found.append(field_errors.invalid(f"{path}.name", reference.get("name", ""),
                                              "name must not be empty"))
        if not reference.get("uid"):
            found.append(field_errors.invalid(f"{path}.uid", reference.get("uid", ""),
                                              "uid must not be empty"))
        controllers += bool(reference.get("controller"))
    if controllers > 1:
        found.append(field_errors.invalid(path, references,
                                          "Only one reference can have Controller set to true."))
    return found
