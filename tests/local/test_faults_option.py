"""`kubetune local up --faults SPEC`: the API server misbehaves as asked, for every client
the SPEC names (here kubectl), and a bad SPEC is refused with what must hold."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

from kubetune.local.cli import READY_PREFIX


def _local_up(tmp_path: pathlib.Path, faults: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "kubetune.local", "up", "--kubeconfig", str(tmp_path / "kc"),
               "--workdir", str(tmp_path / "work"), "--hf-home", str(tmp_path / "hf"),
               "--no-operator", "--faults", faults]
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    return subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_a_bad_spec_is_refused_naming_the_item(tmp_path: pathlib.Path) -> None:
    process = _local_up(tmp_path, "rate=5")
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 2
    assert "faults: rate must be a number between 0 and 1, got '5'" in stderr


def test_kubectl_sees_the_injected_500(tmp_path: pathlib.Path) -> None:
    process = _local_up(tmp_path, "rate=1,kinds=500,agents=kubectl,seed=1")
    try:
        line = process.stdout.readline()
        assert line.startswith(READY_PREFIX), process.stderr.read() if process.poll() else line
        kubeconfig = line.removeprefix(READY_PREFIX).strip()
        done = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "ns"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode != 0
        assert "Internal error occurred: etcdserver: leader changed" in done.stderr
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
        assert "injecting API faults: rate=1,kinds=500,seed=1,agents=kubectl" in process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
