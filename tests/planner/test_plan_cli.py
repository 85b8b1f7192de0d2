"""`kubetune plan`: good manifests print a plan (exit 0, fit or not); bad input exits 1."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
import yaml
from kubetune.planner import cli

from tests.planner.real_configs import REAL_MODELS

MANIFEST = {
    "apiVersion": "kubetune.io/v1alpha1",
    "kind": "FinetuneJob",
    "metadata": {"name": "support-bot", "namespace": "team-a"},
    "spec": {
        "model": {"uri": "hf://meta-llama/Meta-Llama-3-8B"},
        "dataset": {"uri": "s3://datasets/support/train.jsonl"},
        "method": {"type": "lora", "lora": {"r": 16, "targetModules": ["all-linear"]}},
        "hyperparameters": {"batchSize": 1, "maxSeqLength": 2048},
        "resources": {"gpus": 1},
        "output": {"uri": "s3://models/team-a/support-bot/"},
    },
}


def write(tmp_path: Path, manifest: dict, config: dict | None = None) -> tuple[Path, Path]:
    manifest_path = tmp_path / "job.yaml"
    manifest_path.write_text(yaml.safe_dump(manifest))
    config_path = tmp_path / "config.json"
    config_path.write_text(json.dumps(config or REAL_MODELS["meta-llama/Meta-Llama-3-8B"]["config"]))
    return manifest_path, config_path


def plan(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="kubetune plan")
    cli.add_arguments(parser)
    return cli.run(parser.parse_args(argv))


def with_spec(**sections) -> dict:
    manifest = json.loads(json.dumps(MANIFEST))
    for path, value in sections.items():
        *parents, leaf = path.split("__")
        node = manifest["spec"]
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return manifest


def test_json_plan_of_a_fitting_job(tmp_path, capsys):
    manifest, config = write(tmp_path, MANIFEST)
    assert plan(["-f", str(manifest), "--config-json", str(config), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fits"] is True
    assert out["plan"]["parameters"] == 8_030_261_248
    assert out["plan"]["gpuMemoryBytes"] == 80 * 2**30  # the nvidia.com/gpu default
    assert out["plan"]["estimatedGpuMemoryBytes"] == out["items"]["total"]
    assert out["plan"]["trainableParameters"] > 0
    assert out["alternatives"] == []
    assert out["message"].endswith("of 80 GiB per GPU")


def test_job_that_does_not_fit_still_exits_0_with_alternatives(tmp_path, capsys):
    manifest, config = write(tmp_path, with_spec(method={"type": "full"}))
    assert plan(["-f", str(manifest), "--config-json", str(config), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["fits"] is False and out["reason"] == "DoesNotFit"
    assert out["shortfallBytes"] > 0
    assert {"method lora", "method qlora"} <= {a["description"] for a in out["alternatives"]}
    assert all(a["estimatedGpuMemoryBytes"] <= 80 * 2**30 for a in out["alternatives"])


def test_gpu_memory_flag_overrides_the_manifest(tmp_path, capsys):
    manifest, config = write(tmp_path, with_spec(resources__gpuMemory="80Gi"))
    args = ["-f", str(manifest), "--config-json", str(config), "--gpu-memory", "24Gi"]
    assert plan([*args, "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["gpuMemoryBytes"] == 24 * 2**30


def test_table_output_lists_items_and_verdict(tmp_path, capsys):
    manifest, config = write(tmp_path, with_spec(method={"type": "full"}))
    assert plan(["-f", str(manifest), "--config-json", str(config)]) == 0
    out = capsys.readouterr().out
    for word in ("weights", "optimizerStates", "activations", "logits", "total", "DoesNotFit",
                 "alternatives that fit", "full replica"):  # fmt: skip
        assert word in out


def test_config_comes_from_the_model_uri_via_the_hf_cache(tmp_path, capsys, monkeypatch):
    snapshot = tmp_path / "hub" / "models--meta-llama--Meta-Llama-3-8B" / "snapshots" / "c0"
    snapshot.mkdir(parents=True)
    (snapshot / "config.json").write_text(json.dumps(REAL_MODELS["meta-llama/Meta-Llama-3-8B"]["config"]))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    manifest, _ = write(tmp_path, MANIFEST)
    assert plan(["-f", str(manifest), "-o", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["parameters"] == 8_030_261_248


@pytest.mark.parametrize(
    ("manifest", "flags", "message"),
    [
        (with_spec(resources__gpuMemory="eighty"), [],
         "spec.resources.gpuMemory: must be a Kubernetes quantity like 80Gi"),
        (MANIFEST, ["--gpu-memory", "80GB"], "--gpu-memory: must be a Kubernetes quantity"),
        (with_spec(hyperparameters={"batchSize": 0}), [], "spec.hyperparameters.batchSize"),
        (with_spec(method={"type": "lora", "lora": {"targetModules": ["query"]}}), [],
         "spec.method.lora.targetModules: query match no linear layer"),
        ({"kind": "EvalJob", "spec": {}}, [], "holds no FinetuneJob"),
    ],
)  # fmt: skip
def test_bad_input_exits_1_naming_the_field(tmp_path, capsys, manifest, flags, message):
    manifest_path, config = write(tmp_path, manifest)
    assert plan(["-f", str(manifest_path), "--config-json", str(config), *flags]) == 1
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_unreadable_model_config_exits_1_and_suggests_the_flag(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    manifest, _ = write(tmp_path, MANIFEST)
    assert plan(["-f", str(manifest)]) == 1
    err = capsys.readouterr().err
    assert "spec.model.uri: cannot read config.json" in err and "--config-json" in err


def test_unsupported_model_exits_1(tmp_path, capsys):
    manifest, config = write(tmp_path, MANIFEST, {"model_type": "t5"})
    assert plan(["-f", str(manifest), "--config-json", str(config)]) == 1
    assert "spec.model.uri: config.json: model_type 't5' is not supported" in capsys.readouterr().err


def full_on_8_gpus(strategy: str | None) -> dict:
    manifest = with_spec(method={"type": "full"}, resources__gpus=8, resources__gpuMemory="80Gi")
    if strategy is not None:
        manifest["spec"]["resources"]["strategy"] = strategy
    return manifest


@pytest.mark.parametrize(("strategy", "fits", "resolved"), [
    ("ddp", False, "ddp"), ("fsdp", True, "fsdp"), ("auto", True, "fsdp"), (None, True, "fsdp"),
])  # fmt: skip
def test_llama3_8b_full_finetuning_on_8_gpus_fits_only_sharded(
    tmp_path, capsys, strategy, fits, resolved
):
    """Issue 14's acceptance case: full finetuning of Llama-3-8B needs ~164 GiB per GPU as a
    replica (DDP), ~39 GiB with weights, gradients and AdamW states split 8 ways (FSDP)."""
    manifest, config = write(tmp_path, full_on_8_gpus(strategy))
    assert plan(["-f", str(manifest), "--config-json", str(config), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["fits"], out["strategy"], out["plan"]["strategy"]) == (fits, resolved, resolved)
    assert out["assumptions"]["shards"] == (8 if resolved == "fsdp" else 1)
    if resolved == "ddp":
        assert out["alternatives"][0]["changes"] == {"resources.strategy": "fsdp"}
    else:
        assert out["items"]["allGatherBuffers"] > 0
        assert out["alternatives"] == []


def test_table_shows_the_strategy(tmp_path, capsys):
    manifest, config = write(tmp_path, full_on_8_gpus("ddp"))
    assert plan(["-f", str(manifest), "--config-json", str(config)]) == 0
    out = capsys.readouterr().out
    assert "strategy    ddp (a full replica per GPU)" in out
    assert "  - strategy: fsdp (~" in out
    manifest, config = write(tmp_path, full_on_8_gpus("auto"))
    assert plan(["-f", str(manifest), "--config-json", str(config)]) == 0
    assert "strategy    fsdp (sharded over 8 GPUs)" in capsys.readouterr().out


def test_auto_keeps_ddp_when_it_fits(tmp_path, capsys):
    """LoRA on Llama-3-8B fits one replica per GPU: no sharding traffic is added."""
    manifest, config = write(tmp_path, with_spec(resources__gpus=8))
    assert plan(["-f", str(manifest), "--config-json", str(config), "-o", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["fits"], out["strategy"]) == (True, "ddp")


def test_fsdp_on_cpu_is_rejected_naming_the_field(tmp_path, capsys):
    manifest, config = write(tmp_path, with_spec(resources={"gpus": 0, "strategy": "fsdp"}))
    assert plan(["-f", str(manifest), "--config-json", str(config)]) == 1
    assert "resources.strategy fsdp needs GPUs" in capsys.readouterr().err


def test_plan_shows_cpu_offload_and_prices_it(tmp_path, capsys):
    sharded = full_on_8_gpus("fsdp")
    offloaded = full_on_8_gpus("fsdp")
    offloaded["spec"]["resources"]["cpuOffload"] = True
    outs = []
    for manifest_doc in (sharded, offloaded):
        manifest, config = write(tmp_path, manifest_doc)
        assert plan(["-f", str(manifest), "--config-json", str(config), "-o", "json"]) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert [o["assumptions"]["cpuOffload"] for o in outs] == [False, True]
    assert outs[1]["items"]["weights"] == outs[1]["items"]["optimizerStates"] == 0
    assert outs[1]["items"]["total"] < outs[0]["items"]["total"]
    assert plan(["-f", str(manifest), "--config-json", str(config)]) == 0
    assert "offloaded to CPU" in capsys.readouterr().out
