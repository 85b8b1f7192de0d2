"""Property-based: random specs either validate or produce messages, never an exception."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from kubetune.validation import validate_document

from .manifests import EVAL_JOB, FINETUNE_JOB

scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
    st.text(max_size=20), st.sampled_from(["hf://a/b", "s3://bkt/x", "pvc://c/p", "file:///x",
                                           "lora", "qlora", "full", "causal-lm", "Gi"]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(st.lists(children, max_size=3),
                               st.dictionaries(st.text(max_size=12), children, max_size=4)),
    max_leaves=12,
)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*prefix, key))


def _set(doc, path, value):
    import copy

    doc = copy.deepcopy(doc)
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


FINETUNE_PATHS = [p for p in _paths(FINETUNE_JOB) if p]
EVAL_PATHS = [p for p in _paths(EVAL_JOB) if p]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(FINETUNE_PATHS + EVAL_PATHS), values, st.booleans())
def test_random_field_values_validate_or_explain(path, value, finetune):
    base = FINETUNE_JOB if finetune else EVAL_JOB
    if path not in (FINETUNE_PATHS if finetune else EVAL_PATHS):
        path = path[:1]
    problems = validate_document(_set(base, path, value))
    for problem in problems:
        assert problem.path and problem.message and problem.name


@settings(max_examples=200, deadline=None)
@given(values)
def test_random_documents_validate_or_explain(value):
    for problem in validate_document(value):
        assert str(problem).count(": ") >= 2
