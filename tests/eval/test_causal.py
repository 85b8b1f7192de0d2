"""causal-lm: loss and perplexity by hand, batched generation, adapters, plain-text data."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from kubetune_trainer.eval import scoring
from kubetune_trainer.eval.recipe import evaluate

from .helpers import completion_rows, eval_config, load, write_jsonl


def hand_loss(model, tokenizer, prompt: str, answer: str) -> tuple[float, int]:
    """Summed cross-entropy of the answer tokens (and the closing EOS), one example, no batch."""
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    ids = torch.tensor([prompt_ids + answer_ids])
    with torch.no_grad():
        logits = model(input_ids=ids).logits[0]
    # Position t predicts token t + 1: the answer's tokens are predicted from the positions
    # just before each of them.
    start = len(prompt_ids)
    predicted = logits[start - 1: start - 1 + len(answer_ids)]
    loss = F.cross_entropy(predicted.float(), torch.tensor(answer_ids), reduction="sum")
    return float(loss), len(answer_ids)


def test_perplexity_is_exp_of_the_mean_answer_token_loss(tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    rows = completion_rows(10)
    data = write_jsonl(tmp_path / "test.jsonl", rows)
    config = load(eval_config(f"file://{tiny_lm}", f"file://{data}", tmp_path / "out",
                              metrics=["loss", "perplexity"]))
    summary = evaluate(config)
    values = {row["name"]: row["value"] for row in summary["results"]}

    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    per_example = [hand_loss(model, tokenizer, r["prompt"], r["completion"]) for r in rows]
    loss_sum = sum(loss for loss, _ in per_example)
    tokens = sum(count for _, count in per_example)
    assert values["loss"] == pytest.approx(loss_sum / tokens, abs=1e-5)
    assert values["perplexity"] == pytest.approx(math.exp(loss_sum / tokens), rel=1e-5)
    # Pooled over tokens, not a mean of per-example perplexities.
    assert values["perplexity"] != pytest.approx(
        sum(math.exp(loss / n) for loss, n in per_example) / len(rows), rel=1e-9)

    records = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").open()]
    assert [r["tokens"] for r in records] == [n for _, n in per_example]
    assert "prediction" not in records[0]  # no generation metric was asked for


def test_batched_generation_gives_the_answers_of_one_at_a_time(tiny_lm):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    prompts = [tokenizer(r["prompt"], add_special_tokens=False)["input_ids"]
               for r in completion_rows(8)]
    common = {"device": torch.device("cpu"), "max_new_tokens": 6, "max_length": 256}
    batched = scoring.generate(model, tokenizer, prompts, batch_size=4, **common)
    single = scoring.generate(model, tokenizer, prompts, batch_size=1, **common)
    assert batched == single
    assert all(len(tokenizer(a, add_special_tokens=False)["input_ids"]) <= 6 for a in batched)


def test_generation_always_passes_max_new_tokens(tiny_lm, completion_data, tmp_path, monkeypatch):
    # transformers stops at 24 new tokens unless told otherwise; 30 must reach generate().
    from transformers import LlamaForCausalLM

    seen = []
    original = LlamaForCausalLM.generate

    def spy(self, *args, **kwargs):
        seen.append((kwargs["generation_config"].max_new_tokens,
                     kwargs["generation_config"].do_sample))
        return original(self, *args, **kwargs)

    monkeypatch.setattr(LlamaForCausalLM, "generate", spy)
    config = load(eval_config(f"file://{tiny_lm}", f"file://{completion_data}",
                              metrics=["exactMatch"],
                              generation={"maxNewTokens": 30, "batchSize": 4},
                              dataset={"uri": f"file://{completion_data}", "limit": 6}))
    evaluate(config)
    assert seen and set(seen) == {(30, False)}
    assert len(seen) == 2  # 6 examples in batches of 4


def test_an_adapter_folder_is_scored_on_its_base_model(tiny_lm, completion_data, tmp_path):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.manual_seed(1)
    base = AutoModelForCausalLM.from_pretrained(tiny_lm)
    # init_lora_weights=False: random B matrices, so the adapter really changes the outputs.
    adapted = get_peft_model(base, LoraConfig(r=4, target_modules="all-linear",
                                              init_lora_weights=False))
    adapted.save_pretrained(tmp_path / "adapter")
    adapted.merge_and_unload().save_pretrained(tmp_path / "merged")
    AutoTokenizer.from_pretrained(tiny_lm).save_pretrained(tmp_path / "merged")

    def scores(model: dict) -> dict:
        config = eval_config("", f"file://{completion_data}", model=model)
        return {row["name"]: row["value"] for row in evaluate(load(config))["results"]}

    from_adapter = scores({"uri": f"file://{tmp_path / 'adapter'}", "baseUri": f"file://{tiny_lm}"})
    from_merged = scores({"uri": f"file://{tmp_path / 'merged'}"})
    from_base = scores({"uri": f"file://{tiny_lm}"})
    assert from_adapter["loss"] == pytest.approx(from_merged["loss"], abs=1e-4)
    assert from_adapter["loss"] != pytest.approx(from_base["loss"], abs=1e-3)


def test_plain_text_rows_get_loss_but_no_generation_metrics(tiny_lm, tmp_path):
    data = write_jsonl(tmp_path / "text.jsonl", [{"text": "the cat is number one"},
                                                 {"text": "the dog is number two"}])
    config = load(eval_config(f"file://{tiny_lm}", f"file://{data}",
                              thresholds={"tokenF1": 0.1}))
    summary = evaluate(config)
    assert [row["name"] for row in summary["results"]] == ["loss", "perplexity"]
    assert summary["passed"] is False
    assert "tokenF1 was not computed" in summary["message"]
    assert "need a prompt and a reference" in summary["message"]


def test_a_baseline_uri_named_model_keeps_the_models_own_samples_and_note(
        tiny_lm, completion_data, tmp_path):
    """A baseline.uri model is reported as `model`, the model under test's own key: its
    bootstrap samples and note must not replace the model's (the delta's interval would be
    the baseline against itself, [0, 0], and the report would lose the adapter note)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(1)
    adapted = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_lm),
                             LoraConfig(r=4, target_modules="all-linear",
                                        init_lora_weights=False))
    adapted.save_pretrained(tmp_path / "adapter")
    config = eval_config("", f"file://{completion_data}", tmp_path / "out",
                         model={"uri": f"file://{tmp_path / 'adapter'}",
                                "baseUri": f"file://{tiny_lm}"},
                         baseline={"uri": f"file://{tiny_lm}"}, metrics=["loss", "perplexity"])
    summary = evaluate(load(config))

    assert [b["name"] for b in summary["baselines"]] == ["model"]
    for row in summary["results"]:
        assert row["baselineName"] == "model"
        assert row["delta"] != 0
        assert row["ciLow"] <= row["value"] <= row["ciHigh"]
        assert row["deltaCiLow"] < row["deltaCiHigh"]
        assert row["deltaCiLow"] <= row["delta"] <= row["deltaCiHigh"]
    for entry in summary["baselines"][0]["metrics"]:
        assert entry["ciLow"] <= entry["value"] <= entry["ciHigh"]
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert "adapter merged" in report["model"]["note"]
    assert report["baseline"]["note"] == ""
