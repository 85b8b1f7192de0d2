"""The multi-process supervisor: SIGTERM reaches the trainer, and invalid input exits 2."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from kubetune_trainer.supervise import exit_code


@pytest.mark.parametrize(("code", "summary", "expected"), [
    (0, None, 0),
    (1, json.dumps({"reason": "InvalidDataset"}), 2),
    (1, json.dumps({"reason": "ModelNotFound"}), 2),
    (1, json.dumps({"reason": "TrainerError"}), 1),
    (143, json.dumps({"reason": "Preempted"}), 143),
    (1, "not json", 1),
    (1, None, 1),
])
def test_exit_code_follows_the_trainers_reason(code, summary, expected):
    assert exit_code(code, summary) == expected


def _supervise(tmp_path, script: str) -> subprocess.Popen:
    env = {"KUBETUNE_TERMINATION_LOG": str(tmp_path / "termination"), "PATH": "/usr/bin:/bin"}
    return subprocess.Popen([sys.executable, "-m", "kubetune_trainer.supervise", "--",
                             sys.executable, "-c", script], env=env, cwd=tmp_path)


def test_invalid_input_reported_through_a_launcher_exits_2(tmp_path):
    # What accelerate does: the trainer exits 2, the launcher reports 1.
    script = ("import json, os; open(os.environ['KUBETUNE_TERMINATION_LOG'], 'w').write("
              "json.dumps({'reason': 'InvalidDataset'})); raise SystemExit(1)")
    assert _supervise(tmp_path, script).wait(30) == 2


def test_sigterm_is_forwarded_once_to_the_launcher(tmp_path):
    script = ("import signal, time, pathlib\n"
              "count = []\n"
              "def stop(*_): count.append(1); pathlib.Path('got').write_text(str(len(count)))\n"
              "signal.signal(signal.SIGTERM, stop)\n"
              "pathlib.Path('ready').touch()\n"
              "deadline = time.time() + 20\n"
              "while not count and time.time() < deadline: time.sleep(0.05)\n"
              "time.sleep(0.3)\n"
              "raise SystemExit(143)\n")
    process = _supervise(tmp_path, script)
    deadline = time.time() + 20
    while not (tmp_path / "ready").exists() and time.time() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    process.send_signal(signal.SIGTERM)
    assert process.wait(30) == 143
    assert (tmp_path / "got").read_text() == "1"
