"""Printer-column JSONPath as kube-apiserver evaluates it (client-go util/jsonpath, missing
keys allowed; cases after its jsonpath_test.go), and the Table cells it gives."""

from __future__ import annotations

import pytest
from kubetune.emulator.jsonpath import JsonPathError, find_results
from kubetune.emulator.resources import ResourceType
from kubetune.emulator.tables import as_table

OBJ = {"status": {"conditions": [{"type": "Succeeded", "status": "True", "n": 1},
                                 {"type": "Passed", "status": "False", "n": 2}],
                  "items": [1, 2, 3], "ratio": 0.5}}


@pytest.mark.parametrize(("path", "found"), [
    ('.status.conditions[?(@.type=="Passed")].status', ["False"]),
    ("{.status.conditions[?(@.type=='Succeeded')].status}", ["True"]),
    (".status.conditions[?(@.n>1)].type", ["Passed"]),
    (".status.conditions[?(@.n!=1)].type", ["Passed"]),
    (".status.conditions[?(@.missing)].type", []),
    (".status.conditions[?(@.n)].type", ["Succeeded", "Passed"]),
    (".status.conditions[*].type", ["Succeeded", "Passed"]),
    (".status.items[-1]", [3]), (".status.items[1:]", [2, 3]), (".status.items[7]", []),
    ("..type", ["Succeeded", "Passed"]), (".status.missing.deeper", []),
    (".status['ratio']", [0.5]), (".status.items.x", []),
])
def test_client_go_semantics(path, found):
    assert find_results(OBJ, path) == found


def test_comparing_different_kinds_is_an_error_as_in_go_templates():
    with pytest.raises(JsonPathError):
        find_results(OBJ, '.status.conditions[?(@.n=="1")].type')


def test_a_condition_column_is_filled_and_cells_are_typed_by_the_column():
    columns = (
        {"name": "PASSED", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Passed")].status'},
        {"name": "N", "type": "integer", "jsonPath": ".status.ratio"},
        {"name": "OK", "type": "string", "jsonPath": ".status.ok"},
        {"name": "BAD", "type": "string", "jsonPath": '.status.conditions[?(@.n=="1")].type'},
    )
    rtype = ResourceType(group="kubetune.io", version="v1alpha1", plural="evaljobs",
                         kind="EvalJob", namespaced=True, printer_columns=columns)
    obj = {"metadata": {"name": "e"}, "status": {**OBJ["status"], "ok": True}}
    table = as_table(rtype, {"items": [obj]})
    # integer truncates a float and a string column prints true as Go does; a path the
    # evaluator refuses is an empty cell, as kube-apiserver's.
    assert table["rows"][0]["cells"] == ["e", "False", 0, "true", None]
