"""How close is the memory planner's estimate (the total users see) to the memory a
training step of kubetune's trainer really takes?

Builds tiny random Llama- and Qwen2-style models on CPU, runs two AdamW training steps of
kubetune's own forward (`FinetuneRecipe._forward` on packed rows from `collate_packed`: position
ids, only completion tokens as targets) and measures the second under torch's profiler with
`profile_memory=True` (its allocation events, replayed in time order, give the peak of live
tensor bytes; tracemalloc and RSS cannot see torch's allocator reliably). That peak is
compared with `estimate_memory(...).total` for the same settings on CPU (gpus=0, so no CUDA
context): the user-facing figure, allocator overhead included.

The cases are split: CALIBRATION cases are the ones the planner's measured constants (the logit
copies, the recompute term) were fitted on; HELD_OUT cases (other shapes, another family,
another batch and length) never were. `max_abs_error_pct` is over the held-out cases only;
`calibration_max_abs_error_pct` is reported apart.

Run: .venv/bin/python benchmarks/planner_accuracy.py [--smoke]   (about two minutes on 2 cores)
The last line of stdout is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import AutoConfig, AutoModelForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from kubetune.planner.families import build_layout
from kubetune.planner.memory import PlanRequest, estimate_memory

# (name, config class, shape, batch, seq): the planner's constants were fitted on these only.
CALIBRATION = [
    ("llama-h256-l4", "llama", dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                                    num_attention_heads=8, num_key_value_heads=4,
                                    vocab_size=4000), 4, 256),
    ("llama-h512-l2", "llama", dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=2,
                                    num_attention_heads=8, num_key_value_heads=2,
                                    vocab_size=8000), 4, 256),
]
# Never used to fit anything: other widths, depths, vocabularies, batch and length, a family
# with attention biases.
HELD_OUT = [
    ("llama-h384-l3", "llama", dict(hidden_size=384, intermediate_size=1024, num_hidden_layers=3,
                                    num_attention_heads=6, num_key_value_heads=2,
                                    vocab_size=12000), 2, 384),
    ("qwen2-h320-l3", "qwen2", dict(hidden_size=320, intermediate_size=864, num_hidden_layers=3,
                                    num_attention_heads=5, num_key_value_heads=1,
                                    vocab_size=6000), 6, 192),
]
TARGET_PCT = 15.0
LORA_R, LORA_DROPOUT = 8, 0.05


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def packed_batch(vocab: int, batch: int, seq: int, seed: int) -> dict:
    """`batch` packed rows of `seq` tokens: examples of 20-120 tokens, position ids restarting
    at each, the first third of each (the prompt) not a target, as kubetune's packer makes."""
    from kubetune_trainer.data.batches import collate_packed
    from kubetune_trainer.data.encode import IGNORE_INDEX
    from kubetune_trainer.data.packing import PackedRow

    rng = random.Random(seed)
    rows = []
    for _ in range(batch):
        ids, labels, positions, lengths = [], [], [], []
        while len(ids) < seq:
            length = min(rng.randint(20, 120), seq - len(ids))
            example = [rng.randrange(4, vocab) for _ in range(length)]
            prompt = length // 3
            ids += example
            labels += [IGNORE_INDEX] * prompt + example[prompt:]
            positions += list(range(length))
            lengths.append(length)
        rows.append(PackedRow(ids, labels, positions, lengths))
    return collate_packed(rows, pad_id=0)


def measured_peak(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict) -> int:
    """Peak live tensor bytes of one step (kubetune's forward, backward, optimizer step)."""
    from kubetune_trainer.recipe import FinetuneRecipe

    # What _forward reads of the recipe: a causal LM, no Liger kernels (none on CPU).
    trainer = SimpleNamespace(classification=False, liger=())

    def step() -> None:
        loss, _, _ = FinetuneRecipe._forward(trainer, model, batch, torch.device("cpu"))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    step()  # the first step creates the optimizer states; measure the second
    resident = tensor_bytes(model.parameters()) + sum(
        tensor_bytes(v for v in state.values() if torch.is_tensor(v)) for state in optimizer.state.values()
    )
    activity = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=activity, profile_memory=True) as prof:
        step()
    events = sorted(
        (e.start_ns(), e.nbytes()) for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"
    )
    live = peak = 0
    for _, nbytes in events:
        live += nbytes
        peak = max(peak, live)
    return resident + peak


def run_case(case: tuple, method: str, checkpointing: bool, split: str) -> dict:
    name, family, shape, batch, seq = case
    torch.manual_seed(0)
    config = AutoConfig.for_model(family, **shape, use_cache=False, tie_word_embeddings=False)
    model = AutoModelForCausalLM.from_config(config)  # fp32: the CPU run's precision
    if method == "lora":
        model = get_peft_model(model, LoraConfig(r=LORA_R, lora_dropout=LORA_DROPOUT,
                                                 target_modules="all-linear"))
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if method == "lora":
            model.enable_input_require_grads()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    measured = measured_peak(model, optimizer, packed_batch(shape["vocab_size"], batch, seq, 0))

    request = PlanRequest(
        method=method, precision="fp32", gradient_checkpointing=checkpointing,
        batch_size=batch, seq_length=seq, gpus=0, lora_r=LORA_R, lora_dropout=LORA_DROPOUT,
    )  # fmt: skip
    est = estimate_memory(build_layout(config.to_dict(), "causal-lm"), request)
    error = 100 * (est.total - measured) / measured
    return {
        "split": split, "model": name, "method": method, "gradientCheckpointing": checkpointing,
        "batchSize": batch, "seqLength": seq,
        "estimatedTotalBytes": est.total, "measuredBytes": measured,
        "errorPct": round(error, 1), "ratio": round(est.total / measured, 3),
        "items": est.items(),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--smoke", action="store_true",
                        help="one calibration and one held-out case: checks the JSON")
    args = parser.parse_args()
    load_before = os.getloadavg()
    started = time.perf_counter()
    torch.set_num_threads(2)
    variants = [(m, c) for m in ("full", "lora") for c in (False, True)]
    if args.smoke:
        variants = [("lora", True)]
    cases = [run_case(case, method, ckpt, split)
             for split, group in (("calibration", CALIBRATION), ("held-out", HELD_OUT))
             for case in (group[:1] if args.smoke else group)
             for method, ckpt in variants]
    for c in cases:
        print(
            f"{c['split']:11} {c['model']:14} {c['method']:5} ckpt={c['gradientCheckpointing']!s:5} "
            f"estimated {c['estimatedTotalBytes'] / 2**20:7.1f} MiB  "
            f"measured {c['measuredBytes'] / 2**20:7.1f} MiB  error {c['errorPct']:+.1f}%"
        )
    held = [abs(c["errorPct"]) for c in cases if c["split"] == "held-out"]
    calibration = [abs(c["errorPct"]) for c in cases if c["split"] == "calibration"]
    summary = {
        "benchmark": "planner_accuracy",
        "max_abs_error_pct": max(held),
        "calibration_max_abs_error_pct": max(calibration),
        "held_out_errors_pct": {f"{c['model']}/{c['method']}/ckpt={c['gradientCheckpointing']}":
                                c["errorPct"] for c in cases if c["split"] == "held-out"},
        "calibration_errors_pct": {
            f"{c['model']}/{c['method']}/ckpt={c['gradientCheckpointing']}": c["errorPct"]
            for c in cases if c["split"] == "calibration"},
        "targets": {"max_abs_error_pct": TARGET_PCT},
        "met": {"max_abs_error_pct": max(held) <= TARGET_PCT},
        "cases": cases,
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "cpus": os.cpu_count(),
        "conditions": {
            "device": "cpu", "precision": "fp32", "smoke": args.smoke,
            "estimate": "estimate_memory(...).total (allocator overhead included; gpus=0)",
            "forward": "kubetune_trainer FinetuneRecipe._forward on collate_packed rows",
            "optimizer": "torch.optim.AdamW", "lora": {"r": LORA_R, "dropout": LORA_DROPOUT,
                                                       "targetModules": "all-linear"},
            "attention": "sdpa (transformers' default)",
            "measure": "torch.profiler profile_memory allocation events, peak of live bytes",
            "torch": torch.__version__, "transformers": transformers.__version__,
            "python": platform.python_version(), "machine": platform.machine(),
            "threads": torch.get_num_threads(),
            "seconds": round(time.perf_counter() - started, 1),
        },
    }  # fmt: skip
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
