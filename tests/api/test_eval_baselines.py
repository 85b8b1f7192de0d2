"""Which baselines an EvalJob scores (issue 13, item 1): pure resolution from the spec."""

from __future__ import annotations

import pytest
from kubetune.api import EvalJobSpec, eval_config_for
from kubetune.api.trainer_config import EvalModelConfig, resolve_baselines

DATASET = {"uri": "s3://data/test.jsonl", "format": "classification"}


def spec(**fields) -> EvalJobSpec:
    model = fields.pop("model", {"finetuneJobRef": {"name": "router"}})
    return EvalJobSpec.model_validate({"model": model, "dataset": DATASET, **fields})


@pytest.mark.parametrize(("fields", "task", "from_job", "expected"), [
    # finetuneJobRef and no list: every cheap baseline of the task.
    ({}, "sequence-classification", True, ["majority", "tfidf", "probe", "zero-shot"]),
    # The base model as it is: for classification a random head, named chance (not a baseline).
    ({"compareBaseline": True}, "sequence-classification", True,
     ["majority", "tfidf", "probe", "zero-shot", "chance"]),
    # Causal LM has no cheap baseline; its base model (without the adapter) is `base`.
    ({"compareBaseline": True}, "causal-lm", True, ["base"]),
    ({}, "causal-lm", True, []),
    # A list given is the list; by model.uri there is no training data: no default.
    ({"baselines": ["tfidf"]}, "sequence-classification", True, ["tfidf"]),
    ({"model": {"uri": "s3://models/router", "task": "sequence-classification"}},
     "sequence-classification", False, []),
])
def test_the_default_is_every_cheap_baseline_of_the_task(fields, task, from_job, expected):
    assert resolve_baselines(spec(**fields), task, from_job) == expected


def test_label_descriptions_and_baseline_training_reach_the_evaluator():
    config = eval_config_for(
        "check", "team-a", spec(labelDescriptions={"billing": "a payment problem"},
                                baselineTraining={"uri": "s3://data/other.jsonl"}),
        model=EvalModelConfig(uri="s3://models/router"), task="sequence-classification",
        baseline=None, from_finetune_job=True)
    assert config.label_descriptions == {"billing": "a payment problem"}
    assert config.baseline_training.uri == "s3://data/other.jsonl"  # the spec's wins
