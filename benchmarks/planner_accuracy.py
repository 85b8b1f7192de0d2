"""How close is the memory planner's estimate to the memory a training step really takes?

Builds a few tiny random Llama-style models on CPU, runs one AdamW training step under
torch's profiler with `profile_memory=True` (its allocation events, replayed in time order,
give the peak of live tensor bytes; tracemalloc and RSS cannot see torch's allocator
reliably), and compares that peak with `estimate_memory` for the same settings on CPU
(gpus=0, so no CUDA context; the allocator-overhead share is left out because the measured
figure is tensor bytes, not what an allocator reserves).

Run: .venv/bin/python benchmarks/planner_accuracy.py   (about a minute on 2 cores)
The last line of stdout is one JSON object: ratio = estimate / measured per case.
"""

from __future__ import annotations

import json
import platform
import sys
import time
from pathlib import Path

import torch
import transformers
from peft import LoraConfig, get_peft_model
from transformers import LlamaConfig, LlamaForCausalLM

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
from kubetune.planner.families import build_layout
from kubetune.planner.memory import PlanRequest, estimate_memory

MODELS = {
    "llama-h256-l4": dict(hidden_size=256, intermediate_size=688, num_hidden_layers=4,
                          num_attention_heads=8, num_key_value_heads=4, vocab_size=4000),
    "llama-h512-l2": dict(hidden_size=512, intermediate_size=1376, num_hidden_layers=2,
                          num_attention_heads=8, num_key_value_heads=2, vocab_size=8000),
}  # fmt: skip
BATCH, SEQ = 4, 256


def tensor_bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def measured_peak(model: torch.nn.Module, optimizer: torch.optim.Optimizer, vocab: int) -> int:
    """Peak live tensor bytes of one step (forward, backward, optimizer step)."""
    ids = torch.randint(0, vocab, (BATCH, SEQ))

    def step() -> None:
        loss = model(input_ids=ids, labels=ids).loss
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


def run_case(name: str, shape: dict, method: str, checkpointing: bool) -> dict:
    torch.manual_seed(0)
    config = LlamaConfig(**shape, use_cache=False)
    model = LlamaForCausalLM(config)  # fp32: the CPU run's precision
    r, dropout = 8, 0.05
    if method == "lora":
        model = get_peft_model(model, LoraConfig(r=r, lora_dropout=dropout, target_modules="all-linear"))
    if checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if method == "lora":
            model.enable_input_require_grads()
    model.train()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-4)
    measured = measured_peak(model, optimizer, shape["vocab_size"])

    request = PlanRequest(
        method=method, precision="fp32", gradient_checkpointing=checkpointing,
        batch_size=BATCH, seq_length=SEQ, gpus=0, lora_r=r, lora_dropout=dropout,
    )  # fmt: skip
    est = estimate_memory(build_layout(config.to_dict(), "causal-lm"), request)
    estimated = est.total - est.allocator_overhead
    return {
        "model": name,
        "method": method,
        "gradientCheckpointing": checkpointing,
        "estimatedBytes": estimated,
        "measuredBytes": measured,
        "ratio": round(estimated / measured, 3),
        "items": est.items(),
    }


def main() -> None:
    started = time.perf_counter()
    torch.set_num_threads(2)
    cases = [
        run_case(name, shape, method, ckpt)
        for name, shape in MODELS.items()
        for method in ("full", "lora")
        for ckpt in (False, True)
    ]
    for c in cases:
        print(
            f"{c['model']:15} {c['method']:5} ckpt={c['gradientCheckpointing']!s:5} "
            f"estimated {c['estimatedBytes'] / 2**20:7.1f} MiB  "
            f"measured {c['measuredBytes'] / 2**20:7.1f} MiB  ratio {c['ratio']}"
        )
    ratios = [c["ratio"] for c in cases]
    summary = {
        "benchmark": "planner_accuracy",
        "ratios": {f"{c['model']}/{c['method']}/ckpt={c['gradientCheckpointing']}": c["ratio"]
                   for c in cases},
        "minRatio": min(ratios),
        "maxRatio": max(ratios),
        "cases": cases,
        "conditions": {
            "device": "cpu", "precision": "fp32", "batchSize": BATCH, "seqLength": SEQ,
            "optimizer": "torch.optim.AdamW", "lora": {"r": 8, "dropout": 0.05,
                                                       "targetModules": "all-linear"},
            "attention": transformers.LlamaConfig()._attn_implementation or "sdpa",
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
