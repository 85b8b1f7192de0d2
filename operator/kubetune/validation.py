"""Validate kubetune manifests the way the API server and the operator will.

Each document is checked three ways, and every problem found is reported, each once: against
the CRD's OpenAPI schema (what the API server enforces first), against the CRD's CEL rules
(evaluated with cel-python after the schema's defaults are applied, as the API server does),
and against the API models (which hold the same rules, and say more). Problems come out as
`NAME: FIELD_PATH: what must hold`, never as a traceback, whatever the input: YAML is read
within fixed bounds (size, documents, nesting depth, nodes after alias expansion) that are
checked on the parser's event stream before anything is built, and duplicate keys are refused
as kubectl's strict field validation refuses them.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import celpy
import jsonschema
import yaml
from pydantic import BaseModel, ValidationError

from .api.base import RULES_ERROR
from .api.kube_syntax import (
    DNS_LABEL_MAX,
    dns_subdomain_problems,
    label_value_problems,
    qualified_name_problems,
)
from .api.names import name_problem
from .api.resources import API_VERSION, JOBS, RESOURCES, RUNTIMES, Resource
from .crdgen import resource_schema

MAX_BYTES = 3 * 1024 * 1024
"""Largest input (file or standard input): the API server's request body limit (3 MiB)."""
MAX_DOCUMENTS = 500
"""Most YAML documents in one input."""
MAX_DEPTH = 100
"""Deepest nesting of mappings and sequences (a FinetuneJob needs 7)."""
MAX_NODES = 100_000
"""Most YAML nodes in one input, counting each alias as the nodes it stands for: a "billion
laughs" document is refused after reading its first 100,000 nodes, not expanded."""

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when available


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong with a manifest."""

    name: str
    path: str
    message: str

    def __str__(self) -> str:
        # One line per problem, whatever characters a name or key holds.
        return _printable(f"{self.name}: {self.path}: {self.message}")


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


class _BoundExceeded(Exception):
    """The input goes past one of the bounds; the message says which."""


class _DuplicateKey(yaml.YAMLError):
    def __init__(self, key: Any, first_line: int, second_line: int) -> None:
        super().__init__(f"duplicate key {key!r} at lines {first_line} and {second_line}; "
                         "the API server refuses duplicate fields")
        self.line = second_line


class _StrictLoader(_BASE_LOADER):  # type: ignore[misc, valid-type]
    """PyYAML's safe loader, refusing duplicate keys instead of keeping the last one."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":  # `<<: *base` may override keys
                continue
            key, line = self.construct_object(key_node, deep=True), key_node.start_mark.line + 1
            try:
                if key in seen:
                    raise _DuplicateKey(key, seen[key], line)
                seen[key] = line
            except TypeError:  # an unhashable key: the base class says what is wrong
                break
        return super().construct_mapping(node, deep=deep)


def _too_deep(line: int) -> str:
    return f"nests mappings and lists deeper than {MAX_DEPTH} levels (line {line + 1})"


def _check_bounds(text: str) -> None:
    """Walk the parser's events (no tree is built) and raise _BoundExceeded past a bound."""
    documents = depth = nodes = 0
    sizes: dict[str, int] = {}  # anchor -> nodes it stands for
    open_nodes: list[tuple[str | None, int]] = []  # (anchor, node count when it opened)
    for event in yaml.parse(text, Loader=_BASE_LOADER):
        if isinstance(event, yaml.DocumentStartEvent):
            documents += 1
            sizes = {}  # anchors are local to a document
            if documents > MAX_DOCUMENTS:
                raise _BoundExceeded(f"has more than {MAX_DOCUMENTS} YAML documents")
        elif isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            nodes += 1
            if depth > MAX_DEPTH:
                raise _BoundExceeded(_too_deep(event.start_mark.line))
            open_nodes.append((event.anchor, nodes))
        elif isinstance(event, yaml.CollectionEndEvent):
            depth -= 1
            anchor, opened = open_nodes.pop()
            if anchor is not None:
                sizes[anchor] = nodes - opened + 1
        elif isinstance(event, yaml.ScalarEvent):
            nodes += 1
            if event.anchor is not None:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_nodes):
                raise _BoundExceeded(f"has an alias *{event.anchor} inside the node it refers to "
                                     f"(line {event.start_mark.line + 1}): a recursive structure")
            nodes += sizes.get(event.anchor, 1)
        if nodes > MAX_NODES:
            raise _BoundExceeded(
                f"has more than {MAX_NODES} YAML nodes (aliases counted as what they expand to)")


def too_large() -> str:
    return (f"is larger than {MAX_BYTES // 2**20} MiB, the most the API server accepts in one "
            "request")


def parse_documents(text: str, source: str) -> tuple[list[Any], list[Problem]]:
    """YAML documents of a file (empty documents skipped), or a problem saying why not."""
    if len(text) > MAX_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_BYTES:
        return [], [Problem(source, "(file)", too_large())]
    try:
        _check_bounds(text)
        return [d for d in yaml.load_all(text, Loader=_StrictLoader) if d is not None], []
    except _BoundExceeded as error:
        return [], [Problem(source, "(file)", str(error))]
    except _DuplicateKey as error:
        return [], [Problem(source, f"line {error.line}", f"is not valid: {error}")]
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else "document"
        reason = getattr(error, "problem", None) or str(error).splitlines()[0]
        if "nesting depth" in reason:  # libyaml's own bound (1000) hit while scanning ahead
            return [], [Problem(source, "(file)", _too_deep(mark.line if mark else 0))]
        return [], [Problem(source, where, f"is not valid YAML: {reason}")]
    except (ValueError, OverflowError) as error:
        # Scalars YAML resolves but Python cannot build: `2026-02-30`, a 5,000-digit integer.
        return [], [Problem(source, "document", f"is not valid YAML: {error}")]


def _tree_problem(doc: Any) -> str | None:
    """The same depth and size bounds for a tree that did not come from YAML (the operator's
    objects come from the API server as JSON), checked without recursion."""
    stack, nodes = [(doc, 1)], 0
    while stack:
        node, depth = stack.pop()
        nodes += 1
        if depth > MAX_DEPTH:
            return f"nests mappings and lists deeper than {MAX_DEPTH} levels"
        if nodes > MAX_NODES:
            return f"has more than {MAX_NODES} nodes"
        if isinstance(node, dict):
            stack += [(v, depth + 1) for v in node.values()]
        elif isinstance(node, list):
            stack += [(v, depth + 1) for v in node]
    return None


def validate_document(doc: Any, label: str = "<document>") -> list[Problem]:
    """All problems of one document; an empty list means it is valid."""
    if not isinstance(doc, dict):
        return [Problem(label, "(document)", "must be a mapping with apiVersion, kind, metadata, spec")]
    name = _name_of(doc, label)
    if problem := _tree_problem(doc):
        return [Problem(name, "(document)", problem)]
    kind = doc.get("kind")
    resource = RESOURCES.get(kind) if isinstance(kind, str) else None
    if doc.get("apiVersion") != API_VERSION or resource is None:
        kinds = " or ".join(RESOURCES)
        return [Problem(name, "kind", f"must be {kinds} with apiVersion {API_VERSION}, got "
                                      f"{doc.get('apiVersion')}/{doc.get('kind')}")]
    problems = _metadata_problems(doc, resource, name)
    schema_problems = _schema_problems(doc, resource, name)
    model_problems = _model_problems(doc.get("spec"), resource.spec_model, name)
    # The checks often see the same mistake; keep the models' wording, which says more, and
    # a CEL rule's only where nothing else spoke about that path (its model validator could
    # not run because another field of the model, or of a section above, is wrong).
    model_paths = {p.path for p in model_problems}
    problems += [p for p in schema_problems if p.path not in model_paths] + model_problems
    if problems:
        # Every CEL rule has a model validator twin (tests hold them equal), so a spec the
        # models accept passes them too; they run only to find what the models could not reach.
        # That keeps the operator's check of valid objects cheap (cel-python takes ~1 ms a rule).
        reported = {p.path for p in problems}
        problems += [p for p in _rule_problems(doc, resource, name, bool(schema_problems))
                     if p.path not in reported]
    return sorted(set(problems))


def _name_of(doc: dict, label: str) -> str:
    metadata = doc.get("metadata")
    if isinstance(metadata, dict) and isinstance(metadata.get("name"), str) and metadata["name"]:
        return metadata["name"]
    return label


def _metadata_problems(doc: dict, resource: Resource, name: str) -> list[Problem]:
    metadata = doc.get("metadata")
    if not isinstance(metadata, dict) or not isinstance(metadata.get("name"), str):
        return [Problem(name, "metadata.name", "is required")]
    problems = []
    if resource.max_name_length >= 253:  # no child objects: any object name
        problems += [Problem(name, "metadata.name", p)
                     for p in dns_subdomain_problems(metadata["name"])]
    elif problem := name_problem(resource.kind, metadata["name"]):
        problems.append(Problem(name, "metadata.name", problem))
    problems += [Problem(name, f"metadata.{path}", message)
                 for path, message in object_meta_problems(metadata)]
    return problems


ANNOTATIONS_MAX_BYTES = 256 * 1024


def object_meta_problems(metadata: dict) -> Iterator[tuple[str, str]]:
    """What ValidateObjectMeta would refuse in namespace, labels and annotations."""
    namespace = metadata.get("namespace")
    if namespace is not None and (not isinstance(namespace, str) or not _is_dns_label(namespace)):
        yield "namespace", "must be a DNS label: at most 63 lowercase letters, digits and '-'"
    for field in ("labels", "annotations"):
        values = metadata.get(field)
        if values is None:
            continue
        if not isinstance(values, dict):
            yield field, "must be a mapping of strings to strings"
            continue
        for key, value in values.items():
            if not isinstance(key, str) or not isinstance(value, str):
                yield f"{field}[{key}]", "keys and values must be strings"
                continue
            # The API server lowercases annotation keys before this check (ValidateAnnotations).
            if problems := qualified_name_problems(key.lower() if field == "annotations" else key):
                yield f"{field}[{key}]", "key: " + "; ".join(problems)
            if field == "labels" and (problems := label_value_problems(value)):
                yield f"{field}[{key}]", "; ".join(problems)
        if field == "annotations" and all(isinstance(k, str) and isinstance(v, str)
                                          for k, v in values.items()):
            size = sum(len(k.encode()) + len(v.encode()) for k, v in values.items())
            if size > ANNOTATIONS_MAX_BYTES:
                yield field, f"must have at most {ANNOTATIONS_MAX_BYTES} bytes in all"


def _is_dns_label(value: str) -> bool:
    return len(value) <= DNS_LABEL_MAX and re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", value) is not None


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


# --- CEL rules, as the API server runs them -------------------------------------------------

@dataclass(frozen=True)
class _Rule:
    path: tuple[str, ...]  # below spec; "*" stands for every item of a list or map
    field_path: str
    message: str
    program: Any


@cache
def _rules(kind: str) -> tuple[_Rule, ...]:
    """The CEL rules of the spec's schema, compiled once. Transition rules (oldSelf) only run
    on updates, and the one rule of the object's root (the name's length) is checked by
    name_problem, so neither is here."""
    env = celpy.Environment()
    rules = []

    def walk(node: dict, path: tuple[str, ...]) -> None:
        for rule in node.get("x-kubernetes-validations", []):
            if "oldSelf" not in rule["rule"]:
                rules.append(_Rule(path, rule.get("fieldPath", ""), rule["message"],
                                   env.program(env.compile(rule["rule"]))))
        for name, sub in node.get("properties", {}).items():
            walk(sub, (*path, name))
        if "items" in node:
            walk(node["items"], (*path, "*"))
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], (*path, "*"))

    walk(_spec_schema(kind), ())
    return tuple(rules)


@cache
def _spec_schema(kind: str) -> dict[str, Any]:
    return resource_schema(RESOURCES[kind])["properties"]["spec"]


def with_defaults(node: Any, schema: dict[str, Any]) -> Any:
    """`node` with the schema's defaults filled in, top-down, as the API server does before
    it runs CEL rules (structural defaulting: a missing or null field with a default)."""
    if isinstance(node, dict) and schema.get("type") == "object":
        properties = schema.get("properties", {})
        out = dict(node)
        for key, sub in properties.items():
            if out.get(key) is None and "default" in sub:
                out[key] = copy.deepcopy(sub["default"])
        additional = schema.get("additionalProperties")
        for key, value in out.items():
            if key in properties:
                out[key] = with_defaults(value, properties[key])
            elif isinstance(additional, dict):
                out[key] = with_defaults(value, additional)
        return out
    if isinstance(node, list) and isinstance(schema.get("items"), dict):
        return [with_defaults(item, schema["items"]) for item in node]
    return node


def _nodes_at(node: Any, path: tuple[str, ...], prefix: str = "spec") -> Iterator[tuple[str, Any]]:
    if not path:
        yield prefix, node
        return
    head, rest = path[0], path[1:]
    if head == "*" and isinstance(node, list):
        for index, item in enumerate(node):
            yield from _nodes_at(item, rest, f"{prefix}[{index}]")
    elif head == "*" and isinstance(node, dict):
        for key, item in node.items():
            yield from _nodes_at(item, rest, f"{prefix}[{key}]")
    elif isinstance(node, dict) and head in node:
        yield from _nodes_at(node[head], rest, f"{prefix}.{head}")


def _rule_problems(doc: dict, resource: Resource, name: str, schema_failed: bool) -> list[Problem]:
    """The CEL rules the spec breaks. The API server skips them all after a type error; here
    a rule runs wherever its inputs allow, so that independent problems all show at once: a
    rule that cannot be evaluated (one of its inputs has the wrong type, which the schema
    check reports) is skipped."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return []
    spec = with_defaults(spec, _spec_schema(resource.kind))
    problems = []
    for rule in _rules(resource.kind):
        for path, node in _nodes_at(spec, rule.path):
            try:
                result = rule.program.evaluate({"self": celpy.json_to_cel(node)})
            except Exception as error:  # cel-python raises many types on wrongly typed input
                result = celpy.CELEvalError(str(error))
            if not isinstance(result, celpy.celtypes.BoolType):
                if not schema_failed:  # well-typed input: a rule that cannot run is a bug
                    problems.append(Problem(name, path, f"rule could not be evaluated: {result}"))
                continue
            if not result:
                problems.append(Problem(name, path + rule.field_path, rule.message))
    return problems


# --- the API models ---------------------------------------------------------------------------

def _model_problems(spec: Any, model: type[BaseModel], name: str) -> list[Problem]:
    try:
        model.model_validate(spec)
    except ValidationError as error:
        return [p for e in error.errors() for p in _pydantic_problems(e, model, name)]
    return []


def _pydantic_problems(error: dict, model: type[BaseModel], name: str) -> list[Problem]:
    loc = list(error["loc"])
    path = "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in loc)
    if error["type"] == RULES_ERROR:  # a model's cross-field rules: one problem each
        return [Problem(name, f"{path}.{sub}" if sub else path, message)
                for sub, message in error["ctx"]["problems"]]
    return [Problem(name, path, _pydantic_message(error, model, loc))]


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


def runtime_resolution_problems(sources: Iterable[tuple[str, str]],
                                runtime_sources: Iterable[tuple[str, str]]) -> list[Problem]:
    """Each valid FinetuneJob and EvalJob resolved against the runtimes in `runtime_sources`
    (`kubetune validate --runtime FILE`): locked fields, a missing runtime, several defaults,
    a runtime that makes the job invalid. Assumes every document passed validate_document."""
    from .runtimes import RuntimeProblem, resolve_offline

    runtimes = [d for _, text in runtime_sources for d in parse_documents(text, "")[0]
                if isinstance(d, dict) and d.get("kind") in RUNTIMES]
    problems = []
    for source, text in sources:
        for index, doc in enumerate(parse_documents(text, source)[0]):
            if not isinstance(doc, dict) or doc.get("kind") not in JOBS:
                continue
            try:
                resolve_offline(doc, runtimes)
            except RuntimeProblem as error:
                name = _name_of(doc, f"{source}#{index}")
                for problem in error.problems:
                    path, _, message = problem.partition(": ")
                    problems.append(Problem(name, path, f"{message} ({error.reason})"))
    return problems


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
