"""Real (non-padding) tokens per second: kubetune's trainer (packing) vs transformers Trainer
(padding), same tiny causal LM, same data, batch size and steps, in one run on CPU.

    .venv/bin/python benchmarks/trainer_throughput.py [--steps 20] [--batch-size 8]

Prints one JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
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


class StepClock:
    """End-of-step times and real tokens per step; the first step (warm-up) is left out."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.tokens: list[int] = []

    def result(self) -> dict:
        seconds = self.times[-1] - self.times[0]
        tokens = sum(self.tokens[1:])
        return {"realTokens": tokens, "seconds": round(seconds, 2),
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


def run_kubetune(model_dir: Path, data: Path, out: Path, steps: int, batch: int) -> dict:
    from kubetune_trainer.recipe import FinetuneRecipe

    config = load(make_config(
        model_dir, f"file://{data}", out, method={"type": "full"},
        dataset={"validation": None, "format": "completion"},
        hyperparameters={"maxSteps": steps, "batchSize": batch, "maxSeqLength": MAX_SEQ,
                         "packing": True, "learningRate": 1e-4, "evalEverySteps": 0},
        output={"mergeAdapter": False}))
    recipe = FinetuneRecipe(config, serve_progress=False)
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
            "packedRows": len(recipe.train_items)}


def run_hf_trainer(model_dir: Path, data: Path, out: Path, steps: int, batch: int) -> dict:
    from kubetune_trainer.data import DataSpec, prepare_data
    from kubetune_trainer.data.batches import collate_padded
    from kubetune_trainer.models import load_tokenizer
    from transformers import AutoModelForCausalLM, Trainer, TrainerCallback, TrainingArguments

    tokenizer = load_tokenizer(f"file://{model_dir}")
    # The same tokenized examples (same loss mask) as kubetune trains on, padded per batch.
    examples = prepare_data(DataSpec(uri=f"file://{data}", format="completion",
                                     max_seq_length=MAX_SEQ), tokenizer).train
    clock, pending = StepClock(), []

    def collate(items):
        batch_tensors = collate_padded(items, tokenizer.pad_token_id)
        pending.append(int(batch_tensors.pop("real_tokens")))
        return batch_tensors

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            clock.times.append(time.perf_counter())
            clock.tokens.append(pending.pop(0))

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    args = TrainingArguments(
        output_dir=str(out), max_steps=steps, per_device_train_batch_size=batch,
        learning_rate=1e-4, lr_scheduler_type="constant", use_cpu=True, report_to=[],
        save_strategy="no", logging_strategy="no", disable_tqdm=True, seed=7,
        remove_unused_columns=False, dataloader_num_workers=0,
    )
    trainer = Trainer(model=model, args=args, train_dataset=examples, data_collator=collate,
                      callbacks=[Clock()])
    trainer.train()
    return clock.result()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--examples", type=int, default=1200)
    args = parser.parse_args()
    transformers.logging.set_verbosity_error()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        os.environ["KUBETUNE_CACHE_DIR"] = str(root / "cache")
        tokenizer = build_tokenizer(root / "model")
        build_tiny_llama(root / "model", len(tokenizer), hidden=HIDDEN, layers=LAYERS)
        data = write_jsonl(root / "train.jsonl", completion_rows(args.examples, seed=1))
        hf = run_hf_trainer(root / "model", data, root / "hf", args.steps, args.batch_size)
        kubetune = run_kubetune(root / "model", data, root / "kt", args.steps, args.batch_size)
    print(json.dumps({
        "benchmark": "trainer_throughput",
        "kubetuneTokensPerSecond": kubetune["tokensPerSecond"],
        "hfTrainerTokensPerSecond": hf["tokensPerSecond"],
        "ratio": round(kubetune["tokensPerSecond"] / hf["tokensPerSecond"], 2),
        "target": 1.3,
        "kubetune": kubetune,
        "hfTrainer": hf,
        "conditions": {
            "model": f"Llama {LAYERS} layers, hidden {HIDDEN}, word-level vocab", "method": "full",
            "steps": args.steps, "batchSize": args.batch_size, "maxSeqLength": MAX_SEQ,
            "examples": args.examples, "lengths": "lognormal(3.6, 0.7) words, capped",
            "device": "cpu", "torchThreads": torch.get_num_threads(),
            "machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
    }))


if __name__ == "__main__":
    main()
