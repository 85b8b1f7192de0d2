"""Real (non-padding) tokens per second: kubetune's trainer (packing) vs the best of three
transformers `Trainer` configurations a user would pick, on equal work, interleaved.

    .venv/bin/python benchmarks/trainer_throughput.py [--repeats 3] [--examples 800] [--smoke]

Each side trains the same tiny causal LM, from the same weights, for one epoch over the same
tokenized examples (the same real tokens and loss mask), full finetuning, AdamW, fp32 on CPU:
- kubetune: packed rows of `maxSeqLength` tokens, `--batch-size` rows a step;
- `Trainer` with `train_sampling_strategy="group_by_length"` (padding, similar lengths batched);
- `Trainer` with `DataCollatorWithFlattening` (padding-free: one row per batch, position ids);
- `Trainer` padded, random order.
Every `Trainer` configuration runs at kubetune's batch size (`--batch-size`, the configuration a
reviewer first reaches for); length grouping also at as many examples a step as kubetune packs
into one (equal tokens per optimizer step). Each uses its own default optimizer (fused AdamW). The sides run
interleaved (the order rotates every repetition) so that load on a shared machine falls on all
of them; the first step of each run (warm-up) is not timed. Reported: the median tokens/s of
each side with min and max, `ratio_vs_best_hf` = kubetune's median / the best `Trainer`
median, the load average before and after, and the core count. Prints one JSON object on the
last line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402
import transformers  # noqa: E402

from tests.trainer.helpers import (  # noqa: E402
    WORDS,
    build_tiny_llama,
    build_tokenizer,
    load,
    make_config,
    write_jsonl,
)

MAX_SEQ = 256
HIDDEN, LAYERS = 256, 4
TARGET = 1.1


class StepClock:
    """End-of-step times and real tokens per step; the first step (warm-up) is left out."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.tokens: list[int] = []

    def result(self) -> dict:
        seconds = self.times[-1] - self.times[0]
        tokens = sum(self.tokens[1:])
        return {"realTokens": tokens, "seconds": round(seconds, 3),
                "tokensPerSecond": round(tokens / seconds, 1), "timedSteps": len(self.times) - 1}


def completion_rows(count: int, seed: int) -> list[dict]:
    """Prompt/completion pairs whose lengths spread like real data: many short, a long tail."""
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        length = min(int(rng.lognormvariate(3.6, 0.7)), MAX_SEQ - 8)
        words = [rng.choice(WORDS) for _ in range(max(length, 4))]
        cut = max(1, len(words) // 3)
        rows.append({"prompt": " ".join(words[:cut]) + f" {index}",
                     "completion": " ".join(words[cut:])})
    return rows


def kubetune_config(model_dir: Path, data: Path, out: Path, batch: int):
    return load(make_config(
        model_dir, f"file://{data}", out, method={"type": "full"},
        dataset={"validation": None, "format": "completion"},
        hyperparameters={"epochs": 1, "maxSteps": 0, "batchSize": batch, "maxSeqLength": MAX_SEQ,
                         "packing": True, "learningRate": 1e-4, "evalEverySteps": 0},
        output={"mergeAdapter": False}))


def run_kubetune(model_dir: Path, data: Path, out: Path, batch: int) -> dict:
    from kubetune_trainer.recipe import FinetuneRecipe

    recipe = FinetuneRecipe(kubetune_config(model_dir, data, out, batch), serve_progress=False)
    recipe.setup()
    clock, train_step = StepClock(), recipe._train_step

    def timed_step(step):
        loss, real_tokens, stop = train_step(step)
        clock.times.append(time.perf_counter())
        clock.tokens.append(real_tokens)
        return loss, real_tokens, stop

    recipe._train_step = timed_step
    recipe.train()
    recipe.close()
    return {**clock.result(), "examples": len(recipe.data.train),
            "packedRows": len(recipe.train_items), "steps": recipe.total_steps,
            "trainLoss": recipe.state.get("trainLoss")}


def hf_examples(model_dir: Path, data: Path) -> list[dict]:
    """The examples kubetune trains on (same tokens, same loss mask), as a datasets user
    would hand them to a `Trainer`: dicts of `input_ids` and `labels`."""
    from kubetune_trainer.data import DataSpec, prepare_data
    from kubetune_trainer.models import load_tokenizer

    tokenizer = load_tokenizer(f"file://{model_dir}")
    encoded = prepare_data(DataSpec(uri=f"file://{data}", format="completion",
                                    max_seq_length=MAX_SEQ), tokenizer).train
    return [{"input_ids": e.input_ids, "labels": e.labels} for e in encoded]


def hf_collator(config: str, pad_id: int):
    """The collator of each `Trainer` configuration, counting real tokens per batch."""
    from transformers import DataCollatorWithFlattening

    flatten = DataCollatorWithFlattening()

    def padded(features):
        width = max(len(f["input_ids"]) for f in features)
        return {
            "input_ids": torch.tensor([f["input_ids"] + [pad_id] * (width - len(f["input_ids"]))
                                       for f in features]),
            "attention_mask": torch.tensor([[1] * len(f["input_ids"])
                                            + [0] * (width - len(f["input_ids"]))
                                            for f in features]),
            "labels": torch.tensor([f["labels"] + [-100] * (width - len(f["labels"]))
                                    for f in features]),
        }

    return flatten if config == "flattening" else padded


def run_hf_trainer(config: str, model_dir: Path, examples: list[dict], out: Path, batch: int,
                   pad_id: int) -> dict:
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    clock, pending = StepClock(), []
    collate = hf_collator(config, pad_id)

    def counting(features):
        pending.append(sum(len(f["input_ids"]) for f in features))
        return collate(features)

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.times.append(time.perf_counter())
            clock.tokens.append(pending.pop(0))

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=str(out), num_train_epochs=1, per_device_train_batch_size=batch,
        learning_rate=1e-4, lr_scheduler_type="constant", use_cpu=True, report_to=[],
        save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=7,
        remove_unused_columns=False, dataloader_num_workers=0,
        train_sampling_strategy="group_by_length" if config == "group_by_length" else "random",
    )
    trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=counting,
                      callbacks=[Clock()])
    output = trainer.train()
    return {**clock.result(), "examples": len(examples), "steps": output.global_step,
            "trainLoss": round(output.training_loss, 4), "optimizer": str(args.optim)}


def spread(values: list[float]) -> dict:
    return {"median": round(statistics.median(values), 1), "min": round(min(values), 1),
            "max": round(max(values), 1), "runs": [round(v, 1) for v in values]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8, help="kubetune's packed rows a step")
    parser.add_argument("--examples", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads of every side (1: steady on a shared machine, where "
                             "threads that wait on each other stall under load)")
    parser.add_argument("--smoke", action="store_true",
                        help="a few examples, one repetition: checks the JSON, not the speed")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.smoke:
        args.examples, args.repeats, args.batch_size = 60, 1, 2
    transformers.logging.set_verbosity_error()
    load_before = os.getloadavg()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["KUBETUNE_CACHE_DIR"] = str(root / "cache")
        tokenizer = build_tokenizer(root / "model")
        build_tiny_llama(root / "model", len(tokenizer), hidden=HIDDEN, layers=LAYERS)
        data = write_jsonl(root / "train.jsonl", completion_rows(args.examples, seed=1))
        examples = hf_examples(root / "model", data)
        # Equal tokens per optimizer step: each Trainer batch holds as many examples as
        # kubetune packs into one step's rows.
        sides = {
            "kubetune": lambda rep: run_kubetune(root / "model", data, root / f"kt{rep}",
                                                 args.batch_size),
        }
        probe = run_kubetune(root / "model", data, root / "probe", args.batch_size)
        matched = max(1, round(len(examples) * args.batch_size / probe["packedRows"]))
        hf_batches = sorted({args.batch_size, matched})
        # Flattening at the matched batch puts ~2,000 tokens in one row (quadratic attention
        # through a materialised mask on CPU: 5-10x slower in a first run) and random padded
        # batches of that size pad far more than grouped ones, so only length grouping, the
        # strongest padded configuration, also runs at the matched batch size.
        for config, batches in (("group_by_length", hf_batches),
                                ("flattening", [args.batch_size]),
                                ("padded", [args.batch_size])):
            for hf_batch in batches:
                def side(rep: int, config: str = config, hf_batch: int = hf_batch) -> dict:
                    return run_hf_trainer(config, root / "model", examples,
                                          root / f"{config}{hf_batch}-{rep}", hf_batch,
                                          tokenizer.pad_token_id)
                sides[f"hf_{config}_batch{hf_batch}"] = side
        runs: dict[str, list[dict]] = {name: [] for name in sides}
        names = list(sides)
        for rep in range(args.repeats):
            for name in names[rep % len(names):] + names[:rep % len(names)]:
                runs[name].append(sides[name](rep))
    load_after = os.getloadavg()

    tps = {name: [r["tokensPerSecond"] for r in results] for name, results in runs.items()}
    medians = {name: statistics.median(values) for name, values in tps.items()}
    best_hf = max((n for n in medians if n != "kubetune"), key=medians.get)
    ratio = medians["kubetune"] / medians[best_hf]
    per_rep = [k / h for k, h in zip(tps["kubetune"], tps[best_hf], strict=True)]
    print(json.dumps({
        "benchmark": "trainer_throughput",
        "ratio_vs_best_hf": round(ratio, 3),
        "best_hf_config": best_hf.removeprefix("hf_"),
        "ratio_vs_best_hf_per_repetition": [round(r, 3) for r in per_rep],
        "ratios_vs_each_hf": {n.removeprefix("hf_"): round(medians["kubetune"] / m, 3)
                              for n, m in medians.items() if n != "kubetune"},
        "tokens_per_second": {name: spread(values) for name, values in tps.items()},
        "targets": {"ratio_vs_best_hf": TARGET},
        "met": {"ratio_vs_best_hf": ratio >= TARGET},
        "runs": runs,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "conditions": {
            "model": f"Llama {LAYERS} layers, hidden {HIDDEN}, word-level vocab", "method": "full",
            "epochs": 1, "examples": len(examples), "kubetuneBatchRows": args.batch_size,
            "hfBatchExamples": hf_batches,
            "hfBatchMatched": matched, "maxSeqLength": MAX_SEQ, "repeats": args.repeats,
            "order": "interleaved, rotated each repetition", "smoke": args.smoke,
            "lengths": "lognormal(3.6, 0.7) words, capped", "device": "cpu",
            "torchThreads": torch.get_num_threads(), "machine": platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__,
            "seconds": round(time.perf_counter() - started, 1),
        },
    }))


if __name__ == "__main__":
    main()
