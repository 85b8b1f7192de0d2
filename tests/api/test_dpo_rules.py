"""method.type dpo and dataset.format feedback: the rules between them hold alike in the CRD's
CEL (what the API server enforces) and in the models (`kubetune validate`, the operator)."""

from __future__ import annotations

import pytest
from kubetune.api import FinetuneJobSpec
from kubetune.api.trainer_config import trainer_config_for

from .manifests import FINETUNE_JOB, changed
from .test_crds import _cel_failures, _defaulted

DPO_JOB = changed(changed(changed(changed(
    FINETUNE_JOB, "spec.model", {"uri": "hf://org/small-lm", "task": "causal-lm"}),
    "spec.dataset.format", "feedback"),
    "spec.method", {"type": "dpo", "dpo": {"beta": 0.2}}),
    "spec.evaluation", None)


def _with(doc, changes):
    for path, value in changes.items():
        doc = changed(doc, path, value)
    return doc


@pytest.mark.parametrize(("changes", "message"), [
    ({}, None),
    ({"spec.method.dpo": {"adapter": "full"}}, None),
    ({"spec.dataset.format": "completion"},
     "method.type dpo needs preference pairs: dataset.format must be feedback"),
    ({"spec.dataset.format": None},
     "method.type dpo needs preference pairs: dataset.format must be feedback"),
    ({"spec.model.task": "sequence-classification"}, "method.type dpo needs model.task causal-lm"),
    ({"spec.hyperparameters.packing": True},
     "hyperparameters.packing must not be true for method.type dpo"),
    ({"spec.resources.strategy": "fsdp", "spec.resources.gpus": 2},
     "resources.strategy fsdp is for method full or lora, not dpo"),
    ({"spec.method": {"type": "lora", "dpo": {"beta": 0.1}}}, "dpo may only be set when type is dpo"),
    ({"spec.method": {"type": "lora"}}, None),  # feedback data for supervised finetuning
    ({"spec.method": {"type": "lora"}, "spec.model.task": "sequence-classification"},
     "dataset.format feedback needs model.task causal-lm"),
])  # fmt: skip
def test_dpo_and_feedback_rules_in_cel_and_in_the_models(changes, message):
    doc = _with(DPO_JOB, changes)
    if doc["spec"]["dataset"].get("format") is None:
        doc["spec"]["dataset"].pop("format")
    failures = _cel_failures("FinetuneJob", doc)
    if message is None:
        assert failures == []
        assert _cel_failures("FinetuneJob", _defaulted(doc)) == []
        FinetuneJobSpec.model_validate(doc["spec"])
    else:
        assert any(message in failure for failure in failures), failures
        with pytest.raises(ValueError, match=message.split(":")[0]):
            FinetuneJobSpec.model_validate(doc["spec"])


@pytest.mark.parametrize(("field", "value"), [("beta", 0), ("beta", -1), ("adapter", "qlora")])
def test_dpo_fields_are_checked(field, value):
    with pytest.raises(ValueError, match=f"dpo.{field}"):
        FinetuneJobSpec.model_validate(changed(DPO_JOB, f"spec.method.dpo.{field}", value)["spec"])


def test_the_trainer_config_resolves_dpo_defaults_and_never_packs():
    doc = _with(DPO_JOB, {"spec.method": {"type": "dpo"}, "spec.hyperparameters.learningRate": None})
    spec = FinetuneJobSpec.model_validate(doc["spec"])
    config = trainer_config_for("j", "ns", spec)
    assert config.method.dpo is not None
    assert (config.method.dpo.beta, config.method.dpo.adapter) == (0.1, "lora")
    assert config.hyperparameters.packing is False
    assert config.hyperparameters.learning_rate == 5e-5
    full = FinetuneJobSpec.model_validate(_with(doc, {"spec.method.dpo": {"adapter": "full"}})["spec"])
    assert trainer_config_for("j", "ns", full).hyperparameters.learning_rate == 1e-6
