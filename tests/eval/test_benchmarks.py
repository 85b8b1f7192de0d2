"""spec.benchmarks through the evaluator on CPU: a custom multiple-choice JSONL the repository
ships, and real lm-evaluation-harness tasks (arc_easy: multiple choice, gsm8k: generation)
whose datasets the test prepares as an offline Hugging Face datasets cache from rows the
repository ships (written for these tests in the Hub datasets' columns). No network:
HF_HUB_OFFLINE and HF_DATASETS_OFFLINE are set."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from kubetune_trainer.eval import bootstrap, cli
from kubetune_trainer.eval.harness.prepare import prepare_cache
from kubetune_trainer.eval.recipe import evaluate

from .helpers import (
    build_tiny_llama,
    build_tokenizer,
    completion_rows,
    eval_config,
    load,
    write_config,
    write_jsonl,
)

DATA = Path(__file__).resolve().parent / "data"
CUSTOM = DATA / "animals-mc.jsonl"


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")


@pytest.fixture(scope="module")
def datasets_cache(tmp_path_factory) -> Path:
    """A prepared datasets cache holding allenai/ai2_arc ARC-Easy and openai/gsm8k main."""
    cache = tmp_path_factory.mktemp("bench-cache") / "cache"
    arc, gsm = DATA / "arc_easy-rows.jsonl", DATA / "gsm8k-rows.jsonl"
    prepare_cache(cache, "allenai/ai2_arc", "ARC-Easy",
                  {"train": arc, "validation": arc, "test": arc})
    prepare_cache(cache, "openai/gsm8k", "main", {"train": gsm, "test": gsm})
    return cache


@pytest.fixture(scope="module")
def other_lm(tmp_path_factory) -> Path:
    """A second tiny Llama (another seed): the 'base model' the deltas are against."""
    folder = tmp_path_factory.mktemp("tiny-llama-base")
    build_tiny_llama(folder, len(build_tokenizer(folder)), seed=1)
    return folder


def config_with(tiny_lm, tmp_path, benchmarks, baseline=None, **extra) -> dict:
    data = write_jsonl(tmp_path / "test.jsonl", completion_rows(4))
    overrides = {"metrics": ["loss"], "benchmarks": benchmarks, **extra}
    if baseline is not None:
        overrides.update(baseline={"uri": f"file://{baseline}"}, baselines=["base"])
    return eval_config(f"file://{tiny_lm}", f"file://{data}", tmp_path / "out", **overrides)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def choice_log_likelihoods(model, tokenizer, question: str, choices: list[str]) -> list[float]:
    """Sum of log p(choice tokens | "Question: ...\\nAnswer:"), one example at a time."""
    context = f"Question: {question}\nAnswer:"
    context_ids = tokenizer(context, add_special_tokens=False)["input_ids"]
    out = []
    for choice in choices:
        whole = tokenizer(context + " " + choice, add_special_tokens=False)["input_ids"]
        with torch.no_grad():
            logits = model(input_ids=torch.tensor([whole])).logits[0].float()
        logp = torch.log_softmax(logits, dim=-1)
        out.append(sum(float(logp[t - 1, whole[t]]) for t in range(len(context_ids), len(whole))))
    return out


def test_custom_multiple_choice_is_scored_by_each_choices_log_likelihood(tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config = config_with(tiny_lm, tmp_path, [{"uri": f"file://{CUSTOM}",
                                              "format": "multiple-choice"}])
    summary = evaluate(load(config))

    model = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    tokenizer = AutoTokenizer.from_pretrained(tiny_lm)
    rows = read_jsonl(CUSTOM)
    expected = []
    for row in rows:
        answer = row["answer"] if isinstance(row["answer"], int) else row["choices"].index(
            row["answer"])
        scores = choice_log_likelihoods(model, tokenizer, row["question"], row["choices"])
        expected.append(float(int(np.argmax(scores)) == answer))

    records = read_jsonl(tmp_path / "out" / "benchmarks.jsonl")
    assert [r["benchmark"] for r in records] == ["animals-mc"] * len(rows)
    assert [r["acc"] for r in records] == expected
    by_name = {row["name"]: row for row in summary["benchmarks"]}
    assert set(by_name) == {"animals-mc/acc", "animals-mc/acc_norm"}
    acc = by_name["animals-mc/acc"]
    assert acc["value"] == pytest.approx(sum(expected) / len(expected), abs=1e-6)
    assert (acc["task"], acc["metric"], acc["samples"], acc["numFewshot"]) == (
        "animals-mc", "acc", len(rows), 0)
    assert acc["ciLow"] <= acc["value"] <= acc["ciHigh"]
    assert "baseline" not in acc  # no base model to compare with


def test_harness_tasks_load_offline_and_compare_with_the_base_model(
        tiny_lm, other_lm, datasets_cache, tmp_path):
    benchmarks = [{"task": "arc_easy", "numFewshot": 1, "limit": 4},
                  {"task": "gsm8k", "numFewshot": 0, "limit": 3},
                  {"uri": f"file://{CUSTOM}", "format": "multiple-choice", "name": "animals"}]
    config = config_with(tiny_lm, tmp_path, benchmarks, baseline=other_lm,
                         benchmarkData={"uri": f"file://{datasets_cache}"},
                         generation={"maxNewTokens": 6, "batchSize": 2},
                         thresholds={"arc_easy/acc": 0.0, "animals/acc": 1.01})
    summary = evaluate(load(config))
    by_name = {row["name"]: row for row in summary["benchmarks"]}
    # Thresholds gate benchmark rows by name, like any metric.
    assert (by_name["arc_easy/acc"]["threshold"], by_name["arc_easy/acc"]["passed"]) == (0.0, True)
    assert by_name["animals/acc"]["passed"] is False
    assert summary["passed"] is False
    assert "is not >= 1.01" in summary["message"]
    assert list(by_name) == [
        "arc_easy/acc", "arc_easy/acc_norm",
        "gsm8k/exact_match,strict-match", "gsm8k/exact_match,flexible-extract",
        "animals/acc", "animals/acc_norm"]
    assert by_name["arc_easy/acc"]["samples"] == 4
    assert by_name["arc_easy/acc"]["numFewshot"] == 1
    assert by_name["gsm8k/exact_match,strict-match"]["samples"] == 3

    # Every row is compared with the base model, the delta's interval paired over the same
    # resamples of the task's examples: recomputed here from the per-example scores.
    records = read_jsonl(tmp_path / "out" / "benchmarks.jsonl")
    for name, row in by_name.items():
        task, metric = name.split("/")
        assert row["baselineName"] == "base"
        assert row["delta"] == pytest.approx(row["value"] - row["baseline"], abs=1e-6)
        mine = np.array([r[metric] for r in records if r["benchmark"] == task], dtype=float)
        theirs = np.array([r["baselines"]["base"][metric] for r in records
                           if r["benchmark"] == task], dtype=float)
        assert row["value"] == pytest.approx(mine.mean(), abs=1e-6)
        assert row["baseline"] == pytest.approx(theirs.mean(), abs=1e-6)
        dists = bootstrap.distributions({"model": lambda i, m=mine: {"x": m[i].mean()},
                                         "base": lambda i, t=theirs: {"x": t[i].mean()}},
                                        len(mine))
        low, high = bootstrap.interval(dists["model"]["x"] - dists["base"]["x"])
        assert (row["deltaCiLow"], row["deltaCiHigh"]) == pytest.approx((low, high), abs=1e-6)
    # gsm8k is a generation task: the answers are kept, capped at maxNewTokens.
    answers = [r["prediction,strict-match"] for r in records if r["benchmark"] == "gsm8k"]
    assert len(answers) == 3 and all(isinstance(a, str) for a in answers)
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["benchmarks"]["dataUri"] == f"file://{datasets_cache}"
    assert [r["name"] for r in report["benchmarks"]["rows"]] == list(by_name)


def run_cli(config: dict, tmp_path: Path) -> tuple[int, dict]:
    code = cli.main(["--config", str(write_config(tmp_path / "config.json", config))])
    return code, json.loads((tmp_path / "termination-log").read_text())


def test_a_task_whose_dataset_is_not_in_the_cache_names_it(tiny_lm, datasets_cache, tmp_path):
    config = config_with(tiny_lm, tmp_path, [{"task": "arc_challenge"}],
                         benchmarkData={"uri": f"file://{datasets_cache}"})
    code, message = run_cli(config, tmp_path)
    assert code == 2  # input error: a retry cannot bring the dataset
    assert message["reason"] == "InvalidDataset"
    text = message["message"]
    assert "spec.benchmarks[0].task: task arc_challenge needs dataset allenai/ai2_arc " \
           "(config ARC-Challenge), which is not in the prepared cache" in text
    assert f"spec.benchmarkData.uri file://{datasets_cache}" in text
    assert "holds: allenai/ai2_arc (ARC-Easy); openai/gsm8k (main)" in text
    assert "load_dataset('allenai/ai2_arc', 'ARC-Challenge')" in text


def test_an_unknown_task_and_a_bad_custom_file_are_input_errors(tiny_lm, tmp_path):
    code, message = run_cli(config_with(tiny_lm, tmp_path, [{"task": "no_such_task"}]),
                            tmp_path)
    assert (code, message["reason"]) == (2, "InvalidConfig")
    assert "spec.benchmarks[0].task: 'no_such_task' is not a task, group or tag of " \
           "lm-evaluation-harness" in message["message"]

    bad = write_jsonl(tmp_path / "bad.jsonl", [
        {"question": "q", "choices": ["a", "b"], "answer": 1},
        {"question": "q", "choices": ["a"], "answer": 0},
        {"question": "q", "choices": ["a", "b"], "answer": "c"},
        {"question": "q", "choices": ["a", "b"], "answer": 2}])
    config = config_with(tiny_lm, tmp_path, [{"uri": f"file://{bad}",
                                              "format": "multiple-choice"}])
    code, message = run_cli(config, tmp_path)
    assert (code, message["reason"]) == (2, "InvalidDataset")
    assert message["message"] == (
        f"spec.benchmarks[0].uri file://{bad}: rows must be {{question, choices, answer}}: "
        "line 2: choices must be a list of at least 2 non-empty strings; "
        "line 3: answer 'c' is not one of the choices; "
        "line 4: answer 2 is not an index of the 2 choices")


def test_benchmarks_need_a_causal_lm(tiny_lm, tmp_path):
    config = config_with(tiny_lm, tmp_path, [{"uri": f"file://{CUSTOM}",
                                              "format": "multiple-choice"}],
                         task="sequence-classification", metrics=["accuracy"])
    code, message = run_cli(config, tmp_path)
    assert (code, message["reason"]) == (2, "InvalidConfig")
    assert "benchmarks score a causal-lm" in message["message"]
    assert not math.isnan(code)


def test_many_benchmark_rows_still_fit_the_termination_message():
    from kubetune_trainer.eval.summary import LIMIT_BYTES, fit, size

    row = {"task": "mmlu_abstract_algebra", "metric": "acc", "numFewshot": 5, "samples": 100,
           "value": 0.123456, "ciLow": 0.1, "ciHigh": 0.2, "baseline": 0.11,
           "baselineName": "base", "delta": 0.013456, "deltaCiLow": -0.01, "deltaCiHigh": 0.03}
    rows = [{"name": f"mmlu_{k}/acc", **row} for k in range(40)]
    summary = fit({"phase": "Succeeded", "message": "x" * 2000, "results": [
        {"name": "loss", "value": 2.0}], "benchmarks": rows,
        "errorAnalysis": {"confusion": [], "worstClasses": []}})
    assert size(summary) < LIMIT_BYTES
    kept = summary["benchmarks"]
    assert 10 <= len(kept) < 40
    assert [r["name"] for r in kept] == [r["name"] for r in rows[:len(kept)]]
    assert set(kept[0]) == {"name", "value", "baseline", "baselineName", "deltaCiLow",
                            "deltaCiHigh", "numFewshot", "samples"}
