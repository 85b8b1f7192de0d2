"""`kubetune validate --runtime FILE` and `kubetune plan --runtime FILE` resolve a job against
runtime manifests offline, as the operator would once both are applied."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import yaml
from kubetune.cli import main
from kubetune.planner import cli as plan_cli

from tests.planner.real_configs import REAL_MODELS

PLATFORM = Path(__file__).resolve().parents[2] / "examples" / "platform"
RUNTIME = PLATFORM / "runtime-gpu.yaml"
JOB = PLATFORM / "finetunejob-with-runtime.yaml"


def job_with(tmp_path: Path, **changes) -> Path:
    doc = yaml.safe_load(JOB.read_text())
    doc["spec"].update(changes)
    path = tmp_path / "job.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


def test_the_platform_examples_resolve(capsys):
    assert main(["validate", "-f", str(JOB), "--runtime", str(RUNTIME)]) == 0
    assert capsys.readouterr().out == "2 documents valid\n"


def test_a_locked_field_is_reported_with_runtime_field_and_reason(tmp_path, capsys):
    path = job_with(tmp_path, image="docker.io/someone/trainer:1")
    assert main(["validate", "-f", str(path), "--runtime", str(RUNTIME)]) == 1
    (line,) = capsys.readouterr().out.splitlines()
    assert line.startswith("support-bot: spec.image: 'docker.io/someone/trainer:1' differs from")
    assert "ClusterFinetuneRuntime a100-lora locks" in line and line.endswith("(RuntimeFieldLocked)")


def test_a_runtime_missing_from_the_files_is_reported(tmp_path, capsys):
    path = job_with(tmp_path, runtimeRef={"kind": "FinetuneRuntime", "name": "nope"})
    assert main(["validate", "-f", str(path), "--runtime", str(RUNTIME)]) == 1
    out = capsys.readouterr().out
    assert "support-bot: spec.runtimeRef: FinetuneRuntime nope does not exist" in out
    assert "(RuntimeNotFound)" in out


def test_without_runtime_files_the_job_alone_is_validated(capsys):
    assert main(["validate", "-f", str(JOB)]) == 0


def test_an_invalid_runtime_file_is_reported_as_such(tmp_path, capsys):
    runtime = yaml.safe_load(RUNTIME.read_text())
    runtime["spec"]["volumes"].append({"name": "root", "hostPath": {"path": "/"}})
    path = tmp_path / "runtime.yaml"
    path.write_text(yaml.safe_dump(runtime))
    assert main(["validate", "-f", str(JOB), "--runtime", str(path)]) == 1
    assert "a100-lora: spec.volumes[1].hostPath" in capsys.readouterr().out


def test_plan_uses_the_runtimes_gpu_memory_and_defaults(tmp_path, capsys):
    config = tmp_path / "config.json"
    config.write_text(json.dumps(REAL_MODELS["meta-llama/Meta-Llama-3-8B"]["config"]))
    runtime = yaml.safe_load(RUNTIME.read_text())
    runtime["spec"]["resources"]["gpuMemory"] = "24Gi"
    runtime_path = tmp_path / "runtime.yaml"
    runtime_path.write_text(yaml.safe_dump(runtime))
    parser = argparse.ArgumentParser()
    plan_cli.add_arguments(parser)
    base = ["-f", str(JOB), "--config-json", str(config), "-o", "json"]
    assert plan_cli.run(parser.parse_args(base)) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["gpuMemoryBytes"] == 80 * 2**30
    assert plan_cli.run(parser.parse_args([*base, "--runtime", str(runtime_path)])) == 0
    assert json.loads(capsys.readouterr().out)["plan"]["gpuMemoryBytes"] == 24 * 2**30


def test_plan_reports_a_locked_field(tmp_path, capsys):
    parser = argparse.ArgumentParser()
    plan_cli.add_arguments(parser)
    path = job_with(tmp_path, image="docker.io/someone/trainer:1")
    assert plan_cli.run(parser.parse_args(["-f", str(path), "--runtime", str(RUNTIME)])) == 1
    assert "spec.image" in capsys.readouterr().err
