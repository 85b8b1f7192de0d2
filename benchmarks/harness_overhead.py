"""spec.benchmarks against the plain harness: the same custom multiple-choice task on the same
tiny Llama, (a) lm-evaluation-harness on its own (`simple_evaluate` loading the model from
its folder, its own bootstrap for stderr) and (b) kubetune's BenchmarkSuite (HFLM over the
already-loaded model, per-example scores kept, seeded paired bootstrap against a base model
that is the same model here). Same examples, in one run on CPU.

    .venv/bin/python benchmarks/harness_overhead.py [--rows 200] [--resamples 1000]

Prints one JSON object on the last line: seconds of each, kubetune's bootstrap alone, and
whether the accuracies agree.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import tempfile
import time
from importlib.metadata import version
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.eval.helpers import ANIMALS, build_tiny_llama, build_tokenizer  # noqa: E402


def rows(count: int) -> list[dict]:
    out = []
    for k in range(count):
        animal = ANIMALS[k % len(ANIMALS)]
        choices = [ANIMALS[(k + j) % len(ANIMALS)] for j in range(4)]
        out.append({"question": f"which one is the {animal} ? " + "the " * (k % 5),
                    "choices": choices, "answer": choices.index(animal)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--resamples", type=int, default=1000)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    import lm_eval
    import torch
    from kubetune.api import EvalConfig
    from kubetune_trainer.eval import bootstrap
    from kubetune_trainer.eval.harness import BenchmarkSuite
    from kubetune_trainer.eval.harness.custom import task_config
    from kubetune_trainer.eval.models import load_under_test
    from lm_eval import evaluator

    torch.set_num_threads(1)
    work = Path(tempfile.mkdtemp())
    model_dir = work / "model"
    build_tiny_llama(model_dir, len(build_tokenizer(model_dir)))
    data = work / "mc.jsonl"
    data.write_text("".join(json.dumps(r) + "\n" for r in rows(args.rows)))

    started = time.perf_counter()
    plain = evaluator.simple_evaluate(
        model="hf", model_args={"pretrained": str(model_dir), "device": "cpu"},
        tasks=[task_config("mc", rows(args.rows), work / "plain")], batch_size=8,
        bootstrap_iters=args.resamples, log_samples=False,
        task_manager=lm_eval.tasks.TaskManager(include_defaults=False))
    plain_seconds = time.perf_counter() - started

    config = EvalConfig.model_validate({
        "jobName": "bench", "namespace": "default", "task": "causal-lm",
        "model": {"uri": f"file://{model_dir}"}, "dataset": {"uri": f"file://{data}"},
        "metrics": ["loss"], "average": "macro", "thresholds": {}, "gpus": 0,
        "generation": {"maxNewTokens": 8, "batchSize": 8},
        "benchmarks": [{"uri": f"file://{data}", "format": "multiple-choice", "name": "mc"}]})
    started = time.perf_counter()
    loaded = load_under_test(config.model, "causal-lm", torch.device("cpu"))
    suite = BenchmarkSuite(config.benchmarks, None, config.generation, work / "suite")
    suite.prepare()
    scores = suite.score(loaded)
    scored = time.perf_counter()
    original = bootstrap.RESAMPLES
    bootstrap.RESAMPLES = args.resamples
    rows_out = suite.rows(scores, {"base": scores})
    bootstrap.RESAMPLES = original
    ours_seconds = time.perf_counter() - started
    acc = next(r for r in rows_out if r["metric"] == "acc")
    print(json.dumps({
        "benchmark": "harness_overhead", "rows": args.rows, "resamples": args.resamples,
        "plainHarnessSeconds": round(plain_seconds, 2),
        "kubetuneSeconds": round(ours_seconds, 2),
        "kubetuneBootstrapSeconds": round(time.perf_counter() - scored, 2),
        "ratio": round(ours_seconds / plain_seconds, 3),
        "plainAcc": plain["results"]["mc"]["acc,none"], "kubetuneAcc": acc["value"],
        "accAgrees": abs(plain["results"]["mc"]["acc,none"] - acc["value"]) < 1e-9,
        "conditions": {"model": "tiny Llama (2 layers, hidden 32, random)", "device": "cpu",
                       "batchSize": 8, "torchThreads": 1, "cpus": os.cpu_count(),
                       "loadAverage1m": round(os.getloadavg()[0], 1),
                       "lm_eval": version("lm_eval"), "torch": torch.__version__,
                       "python": platform.python_version(), "machine": platform.machine()},
    }))


if __name__ == "__main__":
    main()
