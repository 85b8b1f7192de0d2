"""Validate kubetune manifests the way the API server and the operator will.

Each document is checked twice: against the CRD's OpenAPI schema (what the API server
enforces) and against the API models (which also hold the cross-field rules the operator
enforces). Problems come out as `NAME: FIELD_PATH: what must hold`, never as a traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from functools import cache
from typing import Any

import jsonschema
import yaml
from pydantic import BaseModel, ValidationError

from .api.names import name_problem
from .api.resources import API_VERSION, RESOURCES, Resource
from .crdgen import resource_schema


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a manifest."""

    name: str
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.name}: {self.path}: {self.message}"


def parse_documents(text: str, source: str) -> tuple[list[Any], list[Problem]]:
    """YAML documents of a file (empty documents skipped), or a problem saying why not."""
    try:
        return [d for d in yaml.safe_load_all(text) if d is not None], []
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "document"
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        return [], [Problem(source, where, f"is not valid YAML: {reason}")]


def validate_document(doc: Any, label: str = "<document>") -> list[Problem]:
    """All problems of one document; an empty list means it is valid."""
    if not isinstance(doc, dict):
        return [Problem(label, "(document)", "must be a mapping with apiVersion, kind, metadata, spec")]
    name = _name_of(doc, label)
    kind = doc.get("kind")
    resource = RESOURCES.get(kind) if isinstance(kind, str) else None
    if doc.get("apiVersion") != API_VERSION or resource is None:
        kinds = " or ".join(RESOURCES)
        return [Problem(name, "kind", f"must be {kinds} with apiVersion {API_VERSION}, got "
                                      f"{doc.get('apiVersion')}/{doc.get('kind')}")]
    problems = _metadata_problems(doc, resource, name)
    schema_problems = _schema_problems(doc, resource, name)
    model_problems = _model_problems(doc.get("spec"), resource.spec_model, name)
    # Both checks often see the same mistake; keep the models' wording, which says more.
    model_paths = {p.path for p in model_problems}
    problems += [p for p in schema_problems if p.path not in model_paths] + model_problems
    return sorted(set(problems))


def _name_of(doc: dict, label: str) -> str:
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str):
        return metadata["name"]
    return label


def _metadata_problems(doc: dict, resource: Resource, name: str) -> list[Problem]:
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return [Problem(name, "metadata.name", "is required")]
    problem = name_problem(resource.kind, metadata["name"])
    return [Problem(name, "metadata.name", problem)] if problem else []


@cache
def _validator(kind: str) -> jsonschema.Draft4Validator:
    # OpenAPI v3.0 schemas use Draft 4's keywords (boolean exclusiveMinimum); the x-kubernetes
    # extensions are unknown keywords to jsonschema and ignored (CEL rules are mirrored by the
    # models' validators).
    return jsonschema.Draft4Validator(resource_schema(RESOURCES[kind]))


def _schema_problems(doc: dict, resource: Resource, name: str) -> list[Problem]:
    body = {k: v for k, v in doc.items() if k != "status"}
    return [
        Problem(name, _schema_path(error), _schema_message(error))
        for error in _validator(resource.kind).iter_errors(body)
    ]


def _schema_path(error: jsonschema.ValidationError) -> str:
    path = ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path)
    path = path.replace(".[", "[")
    if error.validator == "required":
        missing = error.message.split("'")[1]
        path = f"{path}.{missing}" if path else missing
    return path or "(document)"


def _schema_message(error: jsonschema.ValidationError) -> str:
    value, schema = error.validator_value, error.schema
    match error.validator:
        case "required":
            return "is required"
        case "type":
            return f"must be of type {value}"
        case "enum":
            return "must be one of " + ", ".join(map(str, value))
        case "minimum":
            return f"must be {'>' if schema.get('exclusiveMinimum') else '>='} {value}"
        case "maximum":
            return f"must be {'<' if schema.get('exclusiveMaximum') else '<='} {value}"
        case "maxLength":
            return f"must be at most {value} characters"
        case "minLength":
            return f"must be at least {value} character{'s' if value != 1 else ''}"
        case "maxItems" | "maxProperties":
            return f"must have at most {value} entries"
        case "minItems":
            return f"must have at least {value} entries"
        case "pattern":
            return f"must match the pattern {value}"
    return error.message


def _model_problems(spec: Any, model: type[BaseModel], name: str) -> list[Problem]:
    try:
        model.model_validate(spec)
    except ValidationError as error:
        return [_pydantic_problem(e, model, name) for e in error.errors()]
    return []


def _pydantic_problem(error: dict, model: type[BaseModel], name: str) -> Problem:
    loc = list(error["loc"])
    path = "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    return Problem(name, path, _pydantic_message(error, model, loc))


def _pydantic_message(error: dict, model: type[BaseModel], loc: list) -> str:
    ctx = error.get("ctx", {})
    kind = error["type"]
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        known = _known_fields(model, loc[:-1])
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        hint = f"; did you mean {close[0]}?" if close else f"; known fields: {', '.join(known)}"
        return "is not a known field" + hint
    if kind == "value_error":
        return str(ctx.get("error", error["msg"]))
    comparisons = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<",
                   "less_than_equal": "<="}
    if kind in comparisons:
        bound = next(iter(ctx.values()))
        return f"must be {comparisons[kind]} {bound}"
    simple = {
        "int_type": "must be an integer", "int_parsing": "must be an integer",
        "int_from_float": "must be an integer", "float_type": "must be a number",
        "float_parsing": "must be a number", "bool_type": "must be true or false",
        "bool_parsing": "must be true or false", "string_type": "must be a string",
        "dict_type": "must be a mapping", "model_type": "must be a mapping",
        "model_attributes_type": "must be a mapping", "list_type": "must be a list",
    }
    if kind in simple:
        return simple[kind]
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}"
    if kind == "string_too_long":
        return f"must be at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return "must not be empty"
    if kind == "too_long":
        return f"must have at most {ctx.get('max_length')} entries"
    if kind == "too_short":
        return f"must have at least {ctx.get('min_length')} entries"
    if kind == "string_pattern_mismatch":
        return f"must match the pattern {ctx.get('pattern')}"
    return error["msg"]


def _known_fields(model: type[BaseModel], loc: list) -> list[str]:
    """The camelCase field names of the model found at `loc` inside `model`."""
    current: Any = model
    for part in loc:
        fields = {f.alias or n: f for n, f in current.model_fields.items()}
        field = fields.get(part)
        if field is None:
            return []
        current = _model_in(field.annotation)
        if current is None:
            return []
    return sorted(f.alias or n for n, f in current.model_fields.items())


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _model_in(arg)
        if found:
            return found
    return None


def validate_texts(sources: Iterable[tuple[str, str]]) -> tuple[int, list[Problem]]:
    """Validate (source label, YAML text) pairs; returns (documents seen, problems)."""
    count, problems = 0, []
    for source, text in sources:
        docs, parse_problems = parse_documents(text, source)
        problems += parse_problems
        for index, doc in enumerate(docs):
            count += 1
            problems += validate_document(doc, f"{source}#{index}")
    return count, problems
