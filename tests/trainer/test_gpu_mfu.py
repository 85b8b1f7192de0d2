"""benchmarks/gpu_mfu.py: without a GPU it says so and exits 0; its FLOP count is PaLM's;
and its measuring path (kubetune's recipe, fast path on and off, full and LoRA) runs here
on CPU with a tiny model, so a GPU run does not fail on the plumbing. The MFU and memory
figures themselves only a GPU run gives."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_mfu.py"


def _module():
    spec = importlib.util.spec_from_file_location("gpu_mfu", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_a_gpu_it_exits_0_with_a_no_gpu_json_last_line():
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    out = subprocess.run([sys.executable, str(SCRIPT)], capture_output=True, text=True,
                         timeout=120, env=env, check=False)
    assert out.returncode == 0, out.stderr[-2000:]
    last = json.loads(out.stdout.strip().splitlines()[-1])
    assert last["gpu"] is False and last["reason"] == "no GPU"
    assert last["benchmark"] == "gpu_mfu"


def test_palm_flops_per_token_and_peak_lookup():
    mfu = _module()
    # 6N + 12·L·H·Q·T; LoRA: 4 x frozen + 6 x trainable + the same attention term.
    assert mfu.model_flops_per_token(matmul_params=1000, layers=2, heads=4, head_dim=8,
                                     seq=16) == 6000 + 12 * 2 * 4 * 8 * 16
    assert mfu.model_flops_per_token(matmul_params=1000, layers=2, heads=4, head_dim=8, seq=16,
                                     trainable_matmul_params=10) == 4 * 990 + 60 + 12 * 1024
    assert mfu.peak_tflops("NVIDIA H200") == 989.0
    assert mfu.peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert mfu.peak_tflops("NVIDIA A100-SXM4-80GB") == 312.0
    assert mfu.peak_tflops("Some Future GPU") is None


@pytest.fixture
def fresh_accelerator_state():
    """The benchmark asks for bf16; accelerate keeps one process-wide state, which other
    tests in this process may have set to fp32 (each benchmark run is its own process)."""
    from accelerate.state import AcceleratorState

    AcceleratorState._reset_state(True)
    yield
    AcceleratorState._reset_state(True)


@pytest.mark.slow
@pytest.mark.parametrize("config", ["lora-fastpath", "full-plain"])
def test_the_measuring_path_runs_through_kubetunes_recipe_on_cpu(config, tmp_path, monkeypatch,
                                                                 fresh_accelerator_state):
    mfu = _module()
    monkeypatch.setattr(mfu, "MODEL", dict(
        vocab_size=512, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
        tie_word_embeddings=True))
    monkeypatch.setattr(mfu, "SEQ", 64)
    monkeypatch.setattr(mfu, "BATCH", 2)
    monkeypatch.setattr(mfu, "STEPS", 2)
    monkeypatch.setattr(mfu, "WARMUP", 1)
    monkeypatch.setattr(mfu, "build_inputs", _small_inputs(mfu.build_inputs))
    mfu.build_inputs(tmp_path)
    result = mfu.run_one(config, tmp_path)
    assert result["tokens_per_s"] > 0 and len(result["losses"]) == 2
    assert result["fastPath"]["attention"] == "sdpa"  # CPU
    lora = config.startswith("lora")
    assert (result["trainable_parameters"] < result["parameters"]) is lora
    assert result["mfu"] is None and result["peak_memory_allocated_gib"] is None  # no GPU


def _small_inputs(build):
    """The benchmark's own input builder with rows short enough for SEQ=64."""
    def small(folder):
        model_dir, data = build(folder)
        rows = [json.loads(line) for line in data.read_text().splitlines()]
        data.write_text("".join(json.dumps({"text": " ".join(r["text"].split()[:40])}) + "\n"
                                for r in rows))
        return model_dir, data
    return small
