"""`kubetune policy check`: offline, the rules and messages of the operator and the admission
policy; exit 1 when a rule is broken, 0 when none is, 2 when the input is invalid."""

from __future__ import annotations

from pathlib import Path

import yaml
from kubetune.cli import main

from .cases import FINETUNE_JOB, policy


def _write(path: Path, *docs: dict) -> str:
    path.write_text(yaml.safe_dump_all(docs))
    return str(path)


def test_the_example_job_breaks_the_example_policy(repo_root, capsys):
    platform = repo_root / "examples" / "platform"
    code = main(["policy", "check", "-f", str(platform / "finetunejob-over-policy.yaml"),
                 "--policy", str(platform / "policy-team-a.yaml")])
    out = capsys.readouterr().out.splitlines()
    assert code == 1
    assert out[0] == ("FinetuneJob support-bot-2gpu: ClusterFinetunePolicy teams: "
                      "spec.resources.gpus must be at most 1 (maxGpusPerPod)")
    assert "also sets maxRunningJobs and gpuHourBudget: the operator checks those" in out[1]


def test_a_job_within_every_policy_exits_zero(tmp_path, capsys):
    job = _write(tmp_path / "job.yaml", FINETUNE_JOB)
    policies = _write(tmp_path / "p.yaml", policy("a", maxGpusPerPod=4),
                      policy("b", allowedModels=["hf://Qwen/*"]))
    assert main(["policy", "check", "-f", job, "--policy", policies]) == 0
    assert capsys.readouterr().out.strip() == (
        "FinetuneJob router: keeps the static rules of 2 ClusterFinetunePolicies")


def test_namespace_labels_decide_which_policies_apply(tmp_path, capsys):
    job = _write(tmp_path / "job.yaml", FINETUNE_JOB)
    policies = _write(tmp_path / "p.yaml", policy(
        "b-only", maxGpusPerPod=0, namespaceSelector={"matchLabels": {"team": "b"}}))
    assert main(["policy", "check", "-f", job, "--policy", policies]) == 1
    assert main(["policy", "check", "-f", job, "--policy", policies,
                 "--namespace-labels", "team=a"]) == 0
    assert main(["policy", "check", "-f", job, "--policy", policies,
                 "--namespace-labels", "team=b,tier=gpu"]) == 1
    capsys.readouterr()


def test_an_invalid_manifest_exits_two_naming_the_field(tmp_path, capsys):
    job = _write(tmp_path / "job.yaml", FINETUNE_JOB)
    policies = _write(tmp_path / "p.yaml", policy("bad", maxGpusPerPod=-1))
    assert main(["policy", "check", "-f", job, "--policy", policies]) == 2
    assert "bad: spec.maxGpusPerPod:" in capsys.readouterr().out
