"""Model FLOPs utilisation (MFU) and peak memory of kubetune's training step on one GPU.

A Qwen2.5-0.5B-shaped model (494 M parameters, random weights built from its config: the GPU
machine has no network) is trained on synthetic packed text through kubetune's own recipe
(`FinetuneRecipe.setup` and `_train_step`, the fast path chosen as a user's job would get
it), full finetuning and LoRA, each with `hyperparameters.fastPath` on auto and with every
fast-path item off (sdpa with a block mask, AdamW foreach, no Liger): the strongest
alternative kubetune itself offers. Each configuration runs in its own process (Liger patches
transformers' modules), so peaks and patches do not leak from one to the next.

MFU as in the PaLM paper (Chowdhery et al. 2022, appendix B): achieved tokens/s x model FLOPs
per token / the device's peak dense bf16 FLOP/s, with model FLOPs per token = 6N + 12·L·H·Q·T
(N parameters doing matmuls per token, L layers, H heads, Q head size, T sequence length);
for LoRA the frozen weights need no weight gradients: 4N + 12·L·H·Q·T (+ 6 x the adapter's).
Recomputation (gradient checkpointing) is not counted, as in the definition; tokens are real
(non-padding) tokens.

Run: python benchmarks/gpu_mfu.py   (one GPU, unattended, about 3-6 minutes; no downloads)
Without a GPU it exits 0 printing {"gpu": false, "reason": "no GPU", ...}.
The last line of stdout is one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUDGET_S = 420  # the whole run stays under 8 minutes
STEPS, WARMUP = 12, 4
SEQ, BATCH = 2048, 8

# Qwen2.5-0.5B's shape (its config.json on the hub), built as a Llama: Qwen2 is Llama's
# architecture with q/k/v biases (attention_bias; Llama's also puts one on o_proj, 896
# parameters), and a Qwen2 model type would make AutoTokenizer rebuild the benchmark's own
# word-level tokenizer as Qwen2's BPE one.
QWEN25_05B = dict(vocab_size=151936, hidden_size=896, intermediate_size=4864,
                  num_hidden_layers=24, num_attention_heads=14, num_key_value_heads=2,
                  max_position_embeddings=32768, rope_theta=1_000_000.0, attention_bias=True,
                  tie_word_embeddings=True, rms_norm_eps=1e-6)
MODEL = QWEN25_05B  # tests run the same path on CPU with a tiny shape

# Dense (no sparsity) bf16 tensor-core peak, TFLOP/s, from NVIDIA's data sheets; the first
# name found in torch.cuda.get_device_name() wins. KUBETUNE_PEAK_TFLOPS overrides.
PEAK_BF16_TFLOPS = (
    ("H200", 989.0), ("H100 PCIe", 756.0), ("H100", 989.0), ("H800", 989.0), ("GH200", 989.0),
    ("B200", 2250.0), ("A100", 312.0), ("A800", 312.0), ("L40S", 362.0), ("L40", 181.0),
    ("L4", 121.0), ("A10G", 70.0), ("A10", 125.0), ("RTX 4090", 165.0), ("A6000", 155.0),
)

CONFIGS = {
    "full-fastpath": {"method": "full", "fastPath": {}},
    "full-plain": {"method": "full", "fastPath": {"attention": "sdpa", "liger": "off",
                                                  "fusedOptimizer": "off", "compile": "off"}},
    "lora-fastpath": {"method": "lora", "fastPath": {}},
    "lora-plain": {"method": "lora", "fastPath": {"attention": "sdpa", "liger": "off",
                                                  "fusedOptimizer": "off", "compile": "off"}},
}


def peak_tflops(device_name: str) -> float | None:
    if os.environ.get("KUBETUNE_PEAK_TFLOPS"):
        return float(os.environ["KUBETUNE_PEAK_TFLOPS"])
    for name, tflops in PEAK_BF16_TFLOPS:
        if name in device_name:
            return tflops
    return None


def model_flops_per_token(*, matmul_params: int, layers: int, heads: int, head_dim: int,
                          seq: int, trainable_matmul_params: int | None = None) -> float:
    """PaLM's 6N + 12·L·H·Q·T. With `trainable_matmul_params` (LoRA), the frozen weights do
    forward (2N) and input-gradient (2N) work only, the trainable ones also weight gradients."""
    attention = 12 * layers * heads * head_dim * seq
    if trainable_matmul_params is None:
        return 6 * matmul_params + attention
    frozen = matmul_params - trainable_matmul_params
    return 4 * frozen + 6 * trainable_matmul_params + attention


def no_gpu(reason: str) -> dict:
    return {"benchmark": "gpu_mfu", "gpu": False, "reason": reason,
            "what": "MFU and peak memory of kubetune's training step, Qwen2.5-0.5B shape, "
                    "full and LoRA; needs one CUDA GPU",
            "machine": platform.machine(), "python": platform.python_version()}


# ------------------------------------------------------------------------- one configuration


def build_inputs(folder: Path) -> tuple[Path, Path]:
    """A random-weight Qwen2.5-0.5B-shaped model with a word-level tokenizer, and synthetic
    text rows of 200-1,500 tokens (packed into 2,048-token rows)."""
    import random

    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    rng = random.Random(0)
    words = [f"w{i}" for i in range(min(8000, MODEL["vocab_size"] - 8))]
    model_dir = folder / "model"
    tokenizer = Tokenizer(models.WordLevel(unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.train_from_iterator([" ".join(words)], trainers.WordLevelTrainer(
        special_tokens=["<unk>", "<pad>", "<s>", "</s>"]))
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, unk_token="<unk>", pad_token="<pad>",
                            bos_token="<s>", eos_token="</s>").save_pretrained(model_dir)
    torch.manual_seed(0)
    config = LlamaConfig(**MODEL, bos_token_id=2, eos_token_id=3, pad_token_id=1)
    with torch.device("cuda" if torch.cuda.is_available() else "cpu"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    model.save_pretrained(model_dir)
    del model
    data = folder / "train.jsonl"
    with data.open("w") as out:
        for _ in range(BATCH * (STEPS + WARMUP) * 3):
            text = " ".join(rng.choice(words) for _ in range(rng.randint(200, 1500)))
            out.write(json.dumps({"text": text}) + "\n")
    return model_dir, data


def trainer_config(model_dir: Path, data: Path, out: Path, method: str, fast_path: dict):
    from kubetune.api import TrainerConfig

    return TrainerConfig.model_validate({
        "jobName": "gpu-mfu", "namespace": "bench",
        "model": {"uri": f"file://{model_dir}", "task": "causal-lm"},
        "dataset": {"uri": f"file://{data}", "format": "text"},
        "method": {"type": method, "lora": {"r": 16, "alpha": 32, "dropout": 0.0,
                                            "targetModules": ["all-linear"]}},
        "hyperparameters": {
            "epochs": 0, "maxSteps": STEPS + WARMUP, "learningRate": 1e-5, "batchSize": BATCH,
            "gradientAccumulationSteps": 1, "maxSeqLength": SEQ, "packing": True,
            "lrScheduler": "constant", "warmupRatio": 0.0, "precision": "bf16",
            "gradientCheckpointing": False, "evalEverySteps": 0, "fastPath": fast_path,
        },
        "output": {"uri": f"file://{out}", "mergeAdapter": False},
        "checkpointing": {"everySteps": 0, "keep": 1},
        "resources": {"gpus": 1, "nodes": 1, "strategy": "ddp"},
    })


def run_one(name: str, folder: Path) -> dict:
    """One configuration through kubetune's recipe: setup, WARMUP steps, STEPS timed."""
    import torch
    from kubetune_trainer.recipe import FinetuneRecipe

    spec = CONFIGS[name]
    model_dir, data = folder / "model", folder / "train.jsonl"
    config = trainer_config(model_dir, data, folder / f"out-{name}", spec["method"],
                            spec["fastPath"])
    recipe = FinetuneRecipe(config, serve_progress=False)
    started = time.perf_counter()
    recipe.setup()
    setup_s = time.perf_counter() - started
    for step in range(WARMUP):  # compilation (flex attention, torch.compile) happens here
        recipe._train_step(step)
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    tokens, started = 0, time.perf_counter()
    losses = []
    for step in range(WARMUP, WARMUP + STEPS):
        loss, real_tokens, _ = recipe._train_step(step)
        tokens += real_tokens
        losses.append(round(loss, 4))
    if cuda:
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    model = recipe.accelerator.unwrap_model(recipe.model)
    text = model.config.get_text_config() if hasattr(model.config, "get_text_config") \
        else model.config
    total = sum(p.numel() for p in model.parameters())
    # The input embedding is a lookup, not a matmul; the LM head is one. Tied, the one
    # weight counts once, as the head.
    embedding = text.vocab_size * text.hidden_size
    matmul = total if text.tie_word_embeddings else total - embedding
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    lora = spec["method"] == "lora"
    flops = model_flops_per_token(
        matmul_params=matmul, layers=text.num_hidden_layers, heads=text.num_attention_heads,
        head_dim=text.hidden_size // text.num_attention_heads, seq=SEQ,
        trainable_matmul_params=trainable if lora else None)
    name_ = torch.cuda.get_device_name() if cuda else "cpu"
    peak = peak_tflops(name_) if cuda else None
    tokens_per_s = tokens / seconds
    recipe.close()
    return {
        "config": name, "method": spec["method"], "fastPath": recipe.fast_path,
        "tokens_per_s": round(tokens_per_s, 1), "step_s": round(seconds / STEPS, 4),
        "model_tflops_per_s": round(tokens_per_s * flops / 1e12, 2),
        "mfu": round(tokens_per_s * flops / (peak * 1e12), 4) if peak else None,
        "flops_per_token": flops, "parameters": total, "trainable_parameters": trainable,
        "peak_memory_allocated_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2)
        if cuda else None,
        "peak_memory_reserved_gib": round(torch.cuda.max_memory_reserved() / 2**30, 2)
        if cuda else None,
        "losses": losses,
        "setup_s": round(setup_s, 1), "device": name_, "peak_bf16_tflops": peak,
    }


# ------------------------------------------------------------------------------ driver


def main() -> int:
    if len(sys.argv) == 3 and sys.argv[1] == "--one":
        print(json.dumps(run_one(os.environ["KUBETUNE_MFU_CONFIG"], Path(sys.argv[2]))))
        return 0
    try:
        import torch
    except ImportError:
        print(json.dumps(no_gpu("no GPU (torch is not installed)")))
        return 0
    if not torch.cuda.is_available():
        print(json.dumps(no_gpu("no GPU")))
        return 0
    started = time.perf_counter()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    results, skipped = [], []
    with tempfile.TemporaryDirectory(prefix="kubetune-mfu-") as tmp:
        folder = Path(tmp)
        os.environ["KUBETUNE_CACHE_DIR"] = str(folder / "cache")
        build_inputs(folder)
        for name in CONFIGS:
            left = BUDGET_S - (time.perf_counter() - started)
            if left < 45:
                skipped.append(name)
                continue
            env = {**os.environ, "KUBETUNE_MFU_CONFIG": name,
                   "PYTHONPATH": os.pathsep.join(
                       [str(ROOT / "operator"), str(ROOT / "trainer-image"),
                        os.environ.get("PYTHONPATH", "")])}
            try:
                out = subprocess.run([sys.executable, __file__, "--one", str(folder)],
                                     capture_output=True, text=True, env=env, timeout=left)
            except subprocess.TimeoutExpired:
                skipped.append(name)
                continue
            lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
            if out.returncode == 0 and lines:
                results.append(json.loads(lines[-1]))
            else:
                results.append({"config": name, "error": out.stderr.strip()[-600:]})
    by_name = {r["config"]: r for r in results if "error" not in r}
    summary = {
        "benchmark": "gpu_mfu", "gpu": True, "device": torch.cuda.get_device_name(),
        "peak_bf16_tflops": peak_tflops(torch.cuda.get_device_name()),
        "model": "Qwen2.5-0.5B shape, random weights", "seq": SEQ, "batch": BATCH,
        "steps_timed": STEPS, "warmup_steps": WARMUP,
        "mfu_full": by_name.get("full-fastpath", {}).get("mfu"),
        "mfu_lora": by_name.get("lora-fastpath", {}).get("mfu"),
        "peak_memory_full_gib": by_name.get("full-fastpath", {}).get("peak_memory_allocated_gib"),
        "peak_memory_lora_gib": by_name.get("lora-fastpath", {}).get("peak_memory_allocated_gib"),
        "speedup_full_vs_plain": _ratio(by_name, "full"),
        "speedup_lora_vs_plain": _ratio(by_name, "lora"),
        "runs": results, "skipped_for_time": skipped,
        "seconds": round(time.perf_counter() - started, 1),
        "versions": {"torch": torch.__version__, "cuda": torch.version.cuda},
    }
    print(json.dumps(summary))
    return 0


def _ratio(by_name: dict, method: str) -> float | None:
    fast, plain = by_name.get(f"{method}-fastpath"), by_name.get(f"{method}-plain")
    if not fast or not plain:
        return None
    return round(fast["tokens_per_s"] / plain["tokens_per_s"], 3)


if __name__ == "__main__":
    sys.exit(main())
