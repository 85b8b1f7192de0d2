"""EvalJob on preference data (a feedback file): winRate, the share of pairs where a model
finds the chosen response more likely than the rejected one, with bootstrap intervals and
the paired difference against a second model; and the whole loop, DPO then evaluation
against the base model, on CPU."""

from __future__ import annotations

import json
import shutil

import pytest
from kubetune_trainer.eval.recipe import evaluate

from tests.eval.test_causal import hand_loss

from .helpers import ANSWERS, build_tiny_llama, eval_config, load, write_jsonl

PAIRS = [{"prompt": f"which one is {animal} ?", "chosen": answer,
          "rejected": answer.replace("number", "a")} for animal, answer in ANSWERS.items()]


def test_win_rate_counts_pairs_whose_chosen_response_is_more_likely(tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    # Rated rows as well as explicit pairs: the evaluator reads feedback as the trainer does.
    rows = [*PAIRS[:4], {"prompt": PAIRS[4]["prompt"], "response": PAIRS[4]["rejected"],
                         "rating": 1, "correction": PAIRS[4]["chosen"]},
            {"prompt": PAIRS[5]["prompt"], "response": PAIRS[5]["chosen"], "rating": "up"},
            {"prompt": PAIRS[5]["prompt"], "response": PAIRS[5]["rejected"], "rating": 2}]
    data = write_jsonl(tmp_path / "feedback.jsonl", rows)
    # A second, differently initialised model with the same tokenizer, scored as the base.
    other = tmp_path / "other"
    shutil.copytree(tiny_lm, other)
    build_tiny_llama(other, len(AutoTokenizer.from_pretrained(tiny_lm)), seed=3)
    config = load(eval_config(
        f"file://{tiny_lm}", f"file://{data}", tmp_path / "out", metrics=["winRate"],
        dataset={"uri": f"file://{data}", "format": "feedback", "fields": {}, "limit": 0},
        baseline={"uri": f"file://{other}"}, baselines=["base"], thresholds={"winRate": 0.0}))
    summary = evaluate(config)

    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    won = []
    for pair in PAIRS:
        chosen = -hand_loss(model, tokenizer, pair["prompt"], " " + pair["chosen"])[0]
        rejected = -hand_loss(model, tokenizer, pair["prompt"], " " + pair["rejected"])[0]
        won.append(1.0 if chosen > rejected else 0.5 if chosen == rejected else 0.0)
    row = summary["results"][0]
    assert summary["samples"] == 6 and row["name"] == "winRate"
    assert row["value"] == pytest.approx(sum(won) / len(won))
    assert row["ciLow"] <= row["value"] <= row["ciHigh"], row
    assert row["baselineName"] == "base" and "deltaCiLow" in row
    assert row["passed"] is True and summary["headline"] == "winRate"
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["preference"]["pairs"] == 6
    records = [json.loads(line) for line in (tmp_path / "out" / "predictions.jsonl").open()]
    assert [r["win"] for r in records] == won


@pytest.mark.slow
def test_dpo_on_feedback_raises_the_win_rate_over_the_base_model(tmp_path):
    """The loop on CPU: a tiny colour model, feedback, DPO through the trainer's CLI, then the
    evaluator scores the adapter against its base on held-out feedback: the win rate rises and
    the paired 95% interval of the difference excludes 0."""
    from kubetune_trainer import cli

    from tests.trainer.helpers import (
        build_tiny_llama as build_colour_llama,
    )
    from tests.trainer.helpers import (
        build_tokenizer,
        colour_feedback,
        make_config,
    )

    base = tmp_path / "base"
    build_colour_llama(base, len(build_tokenizer(base)))
    train = write_jsonl(tmp_path / "train.jsonl", colour_feedback(240, seed=1))
    held_out = write_jsonl(tmp_path / "test.jsonl", colour_feedback(60, seed=2))
    config = make_config(base, f"file://{train}", tmp_path / "out",
                         dataset={"format": "feedback", "validation": None},
                         method={"type": "dpo", "dpo": {"beta": 0.1, "adapter": "lora"}},
                         hyperparameters={"packing": False, "maxSteps": 40,
                                          "learningRate": 0.005, "evalEverySteps": 0})
    (tmp_path / "train.json").write_text(json.dumps(config))
    assert cli.main(["--config", str(tmp_path / "train.json")]) == 0

    summary = evaluate(load(eval_config(
        f"file://{tmp_path / 'out' / 'adapter'}", f"file://{held_out}", tmp_path / "eval",
        metrics=["winRate"],
        dataset={"uri": f"file://{held_out}", "format": "feedback", "fields": {}, "limit": 0},
        baseline={"uri": f"file://{base}"}, baselines=["base"],
        thresholds={"winRate": {"value": 0.8, "beatBaseline": True}})))
    row = summary["results"][0]
    assert row["baselineName"] == "base" and row["value"] > row["baseline"]
    assert row["deltaCiLow"] > 0 and row["passed"] is True and summary["passed"] is True
