"""values.yaml is documented in place and values.schema.json rejects what it does not know."""

from __future__ import annotations

import json
import re

import helm_python
import pytest
import yaml

from .chart import CHART_DIR, chart

SCHEMA = json.loads((CHART_DIR / "values.schema.json").read_text())
VALUES_TEXT = (CHART_DIR / "values.yaml").read_text()
VALUES = yaml.safe_load(VALUES_TEXT)


def _resolve(schema: dict) -> dict:
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/definitions/")
        return SCHEMA["definitions"][name]
    return schema


def _object_schemas(schema: dict, path: str):
    """Every object schema in the tree, with a path for messages."""
    schema = _resolve(schema)
    if schema.get("type") == "object" or "properties" in schema:
        yield path, schema
    for key, child in schema.get("properties", {}).items():
        yield from _object_schemas(child, f"{path}.{key}")
    if isinstance(schema.get("items"), dict):
        yield from _object_schemas(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _object_schemas(schema["additionalProperties"], f"{path}.*")


def test_every_object_level_of_the_schema_is_closed():
    schemas = [("", SCHEMA), *((f"definitions.{n}", d) for n, d in SCHEMA["definitions"].items())]
    for root, schema in schemas:
        for path, node in _object_schemas(schema, root):
            closed = node.get("additionalProperties")
            if "properties" in node:
                assert closed is False, f"{path}: additionalProperties must be false"
            else:  # a free-form map: its values still have a type
                assert isinstance(closed, dict) and "type" in closed, f"{path}: untyped map"


@pytest.mark.parametrize("values", [
    {"replicaCont": 2},
    {"trainer": {"gpuMemroy": {"nvidia.com/gpu": "40Gi"}}},
    {"metrics": {"serviceMonitor": {"enabeld": True}}},
    {"networkPolicy": {"metricsFrom": [{"podSelector": {"matchLabel": {"app": "prometheus"}}}]}},
    {"trainer": {"gpuMemory": {"nvidia.com/gpu": 40}}},
    {"trainer": {"allowedUriSchemes": ["ftp"]}},
    {"trainer": {"gpuTolerations": [{"key": "gpu", "opertor": "Exists"}]}},
    {"replicaCount": 0},
    {"watchNamespaces": ["Team_A"]},
], ids=lambda values: json.dumps(values))
def test_schema_rejects_typos_and_bad_types(values):
    with pytest.raises(helm_python.HelmValuesError):
        chart().render(values, name="kubetune", namespace="kubetune-system")


def test_schema_accepts_the_defaults():
    chart().validate_schema(VALUES)


def test_schema_and_values_name_the_same_keys():
    def keys(schema: dict, values: dict, path: str) -> None:
        schema = _resolve(schema)
        properties = schema["properties"]
        assert properties.keys() == values.keys(), path
        for key, child in properties.items():
            if "properties" in child:  # a section of the chart's own, not a Kubernetes type
                keys(child, values[key], f"{path}.{key}")

    keys(SCHEMA, VALUES, "values")


def _key_lines() -> dict[str, int]:
    """Dotted path of each key in values.yaml -> its line index (block-style YAML only)."""
    lines = VALUES_TEXT.splitlines()
    stack: list[tuple[int, str]] = []
    found: dict[str, int] = {}
    for index, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z0-9_.\-/]+):", line)
        if not match or line.lstrip().startswith("#"):
            continue
        indent = len(match.group(1))
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match.group(2)))
        found[".".join(key for _, key in stack)] = index
    return found


def _documented_keys(schema: dict, path: str = ""):
    """Keys users set: leaves and free-form maps (not objects of further documented keys)."""
    for key, child in _resolve(schema)["properties"].items():
        full = f"{path}.{key}" if path else key
        if "properties" in child:
            yield from _documented_keys(child, full)
        else:
            yield full


def test_every_value_has_a_doc_comment():
    lines = VALUES_TEXT.splitlines()
    key_lines = _key_lines()
    undocumented = []
    for key in _documented_keys(SCHEMA):
        index = key_lines[key]
        above = index - 1
        while above >= 0 and lines[above].strip().startswith("#") \
                and not lines[above].strip().startswith("# --"):
            above -= 1
        if above < 0 or not lines[above].strip().startswith("# --"):
            undocumented.append(key)
    assert not undocumented, f"values without a `# --` comment: {undocumented}"
