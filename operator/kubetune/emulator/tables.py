"""Server-side printing: the `Table` objects `kubectl get` asks for.

kubectl sends `Accept: application/json;as=Table;g=meta.k8s.io;v=v1` and prints the
columns the server chose: for Pods, Jobs, Events and Namespaces those of kube-apiserver's
own printers (`printers.py`); otherwise NAME, then a CRD's `additionalPrinterColumns` (or
AGE without), each path evaluated as kube-apiserver does (Kubernetes JSONPath, filters
included: `jsonpath.py`; the first value found, typed by the column's type).
"""

from __future__ import annotations

import datetime
from typing import Any

from kubetune.emulator.jsonpath import JsonPathError, find_results, to_text
from kubetune.emulator.printers import BUILTIN_PRINTERS, human_duration, parse_time
from kubetune.emulator.resources import ResourceType


def wants_table(accept: str) -> bool:
    return "as=Table" in accept


def _column_value(obj: Any, path: str) -> Any:
    """The first value `path` selects, or None (an empty cell), as apiextensions-apiserver's
    tableconvertor: a filter such as `[?(@.type=="Passed")]` must be evaluated, or a
    condition's column stays empty on this cluster while a real one fills it."""
    try:
        results = find_results(obj, path)
    except JsonPathError:
        return None
    return results[0] if results else None


def _typed(type_: str, value: Any) -> Any:
    """tableconvertor's cellForJSONValue (a string column prints the value as text)."""
    if value is None:
        return None
    if type_ == "string":
        return to_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        if type_ == "integer":
            return int(value)
        if type_ == "number":
            return float(value)
    if type_ == "boolean" and isinstance(value, bool):
        return value
    return to_text(value)


def human_age(timestamp: str | None, now: datetime.datetime | None = None) -> str:
    """`kubectl get`'s AGE: 45s, 3m2s, 95m, 5h3m, 3d (apimachinery's HumanDuration)."""
    created = parse_time(timestamp)
    if created is None:
        return "<unknown>"
    return human_duration(((now or datetime.datetime.now(datetime.UTC)) - created).total_seconds())


def _columns(rtype: ResourceType) -> list[dict[str, Any]]:
    if rtype.storage_key in BUILTIN_PRINTERS:
        return BUILTIN_PRINTERS[rtype.storage_key][0]
    columns = [{"name": "Name", "type": "string", "format": "name", "priority": 0,
                "description": "Name of the object"}]
    columns += [
        {"name": column["name"], "type": column.get("type", "string"),
         "format": column.get("format", ""), "priority": column.get("priority", 0),
         "description": column.get("description", "")}
        for column in rtype.printer_columns
    ]
    if not rtype.printer_columns:  # as kube-apiserver: Age only by default
        columns.append({"name": "Age", "type": "string", "format": "", "priority": 0,
                        "description": "Time since the object was created"})
    return columns


def _cells(rtype: ResourceType, obj: dict[str, Any]) -> list[Any]:
    if rtype.storage_key in BUILTIN_PRINTERS:
        return BUILTIN_PRINTERS[rtype.storage_key][1](obj)
    cells: list[Any] = [obj["metadata"]["name"]]
    for column in rtype.printer_columns:
        value = _column_value(obj, column["jsonPath"])
        type_ = column.get("type", "string")
        cells.append(human_age(value) if type_ == "date" else _typed(type_, value))
    if not rtype.printer_columns:
        cells.append(human_age(obj["metadata"].get("creationTimestamp")))
    return cells


def _row_object(obj: dict[str, Any], include_object: str) -> dict[str, Any] | None:
    """What a row embeds, by the request's `includeObject` (apiserver's asTable in
    handlers/response.go): the whole object for `Object` (kubectl asks for it with
    `--sort-by`), none for `None`, else (`Metadata`, the default) its metadata only."""
    if include_object == "Object":
        return obj
    if include_object == "None":
        return None
    return {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
            "metadata": obj["metadata"]}


def as_table(rtype: ResourceType, result: dict[str, Any],
             include_object: str = "Metadata") -> dict[str, Any]:
    """A list (or one object) converted to a meta.k8s.io/v1 Table."""
    objects = result.get("items", [result])
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": (result.get("metadata") or {}).get("resourceVersion", "")},
        "columnDefinitions": _columns(rtype),
        "rows": [
            {"cells": _cells(rtype, obj), "object": _row_object(obj, include_object)}
            for obj in objects
        ],
    }
