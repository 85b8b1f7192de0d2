"""The trainer as the pod runs it: exit codes, termination messages, SIGTERM and resume,
and a truly distributed two-node CPU run from the operator's launch command."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from kubetune.launch import trainer_command
from kubetune_trainer import cli

from .helpers import make_config

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def write_config(path: Path, config: dict) -> Path:
    path.write_text(json.dumps(config))
    return path


def termination_message(tmp_path: Path) -> dict:
    text = (tmp_path / "termination-log").read_text()
    assert len(text.encode()) < 4096
    return json.loads(text)


def test_bad_config_exits_2_with_a_one_line_reason(tmp_path, capsys):
    config = write_config(tmp_path / "c.json", {"jobName": "x", "model": {"uri": "ftp://nope"}})
    assert cli.main(["--config", str(config)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("kubetune_trainer: InvalidConfig: ")
    assert termination_message(tmp_path)["reason"] == "InvalidConfig"
    assert cli.main(["--config", str(tmp_path / "missing.json")]) == 2


def test_missing_model_exits_2_with_model_not_found(tmp_path, colour_data):
    config = make_config(tmp_path / "no-model", f"file://{colour_data}", tmp_path / "out")
    assert cli.main(["--config", str(write_config(tmp_path / "c.json", config))]) == 2
    message = termination_message(tmp_path)
    assert message["phase"] == "Failed" and message["reason"] == "ModelNotFound"


def test_unusable_dataset_exits_2_with_invalid_dataset(tmp_path, tiny_lm):
    bad = ROOT / "examples" / "quickstart" / "data" / "bad.jsonl"
    config = make_config(tiny_lm, f"file://{bad}", tmp_path / "out",
                         dataset={"format": "chat", "validation": None})
    assert cli.main(["--config", str(write_config(tmp_path / "c.json", config))]) == 2
    message = termination_message(tmp_path)
    assert message["reason"] == "InvalidDataset"
    assert "malformed JSON: 3" in message["message"]


def run_trainer(config_path: Path, tmp_path: Path, name: str) -> subprocess.Popen:
    env = {**os.environ, "KUBETUNE_TERMINATION_LOG": str(tmp_path / f"{name}-termination")}
    return subprocess.Popen(
        [sys.executable, "-m", "kubetune_trainer", "--config", str(config_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
    )


def losses(lines: list[str]) -> dict[int, float]:
    found = {}
    for line in lines:
        match = re.search(r"step (\d+)/\d+ .* loss ([\d.]+)", line)
        if match:
            found[int(match.group(1))] = float(match.group(2))
    return found


@pytest.mark.slow
def test_sigterm_saves_a_checkpoint_and_the_retry_continues_the_same_loss_curve(
        tmp_path, tiny_lm, colour_data):
    def config_for(out: Path) -> Path:
        config = make_config(tiny_lm, f"file://{colour_data}", out,
                             dataset={"validation": None},
                             hyperparameters={"maxSteps": 16, "evalEverySteps": 0},
                             checkpointing={"everySteps": 5, "keep": 1})
        return write_config(tmp_path / f"{out.name}.json", config)

    reference = run_trainer(config_for(tmp_path / "reference"), tmp_path, "reference")
    interrupted = run_trainer(config_for(tmp_path / "resumed"), tmp_path, "interrupted")
    first_lines = []
    for line in interrupted.stdout:
        first_lines.append(line)
        if re.search(r"step 7/16", line):
            interrupted.send_signal(signal.SIGTERM)
    assert interrupted.wait() == 143, "".join(first_lines[-20:])
    stopped = json.loads((tmp_path / "interrupted-termination").read_text())
    assert stopped["reason"] == "Preempted" and stopped["phase"] == "Failed"
    stop_step = stopped["step"]
    assert 7 <= stop_step < 16
    checkpoints = sorted(p.name for p in (tmp_path / "resumed" / "checkpoints").iterdir())
    assert checkpoints == [f"checkpoint-{stop_step}"]  # keep: 1 dropped checkpoint-5

    retry = run_trainer(config_for(tmp_path / "resumed"), tmp_path, "retry")
    retry_lines = list(retry.stdout)
    assert retry.wait() == 0, "".join(retry_lines[-20:])
    assert any(f"resume: continuing from checkpoint-{stop_step} at step {stop_step}" in line
               for line in retry_lines)
    reference_lines = list(reference.stdout)
    assert reference.wait() == 0, "".join(reference_lines[-20:])

    expected, before, after = losses(reference_lines), losses(first_lines), losses(retry_lines)
    assert min(after) == stop_step + 1 and max(after) == 16
    for step in range(1, 17):
        got = before[step] if step <= stop_step else after[step]
        assert got == pytest.approx(expected[step], abs=2e-4), (step, got, expected[step])
    assert json.loads((tmp_path / "retry-termination").read_text())["step"] == 16


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_two_cpu_nodes_from_the_launch_command_train_one_model(tmp_path, tiny_lm, colour_data):
    config = write_config(tmp_path / "c.json", make_config(
        tiny_lm, f"file://{colour_data}", tmp_path / "out", dataset={"validation": None},
        hyperparameters={"maxSteps": 6}, output={"mergeAdapter": False}))
    command = trainer_command(gpus=0, nodes=2, config_path=str(config),
                              rendezvous_host="127.0.0.1", port=free_port())
    command[0] = sys.executable  # the supervisor, which starts `accelerate` from PATH
    nodes = []
    for index in (0, 1):
        # What Kubernetes does with $(JOB_COMPLETION_INDEX) in an Indexed Job's args.
        args = [arg.replace("$(JOB_COMPLETION_INDEX)", str(index)) for arg in command]
        env = {**os.environ, "JOB_COMPLETION_INDEX": str(index),
               "PATH": f"{VENV_BIN}{os.pathsep}{os.environ['PATH']}",
               "KUBETUNE_TERMINATION_LOG": str(tmp_path / f"termination-{index}")}
        nodes.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                      text=True, env=env))
    outputs = [node.communicate(timeout=240)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], outputs[0][-3000:] + outputs[1][-3000:]
    digests = dict(re.findall(r"weights: rank (\d) of 2 sha256 (\w+)", "".join(outputs)))
    assert set(digests) == {"0", "1"}, "".join(outputs)[-3000:]
    assert digests["0"] == digests["1"]
    assert "MULTI_CPU" in outputs[0]
    summary = json.loads((tmp_path / "termination-0").read_text())
    assert summary["phase"] == "Succeeded" and summary["step"] == 6
    assert (tmp_path / "out" / "adapter" / "adapter_model.safetensors").exists()
