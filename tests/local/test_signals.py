"""`kubetune quickstart` and `kubetune local up` end every process they started when they
get SIGTERM or SIGINT.

Its trainer runs as a process group of its own (as a container would); nobody else stops
it. A user pressing Ctrl-C, or a CI job's timeout sending SIGTERM, must not leave a
trainer running (the kubelet stops a node's containers the same way: SIGTERM, then
SIGKILL after the grace period; https://kubernetes.io/docs/concepts/workloads/pods/
pod-lifecycle/#pod-termination).
"""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
import requests
import yaml
from kubetune.local.cli import READY_PREFIX

from .helpers import JOBS, job_manifest, wait_until

KUBETUNE = [sys.executable, "-c", "import sys; from kubetune.cli import main; sys.exit(main())"]


def _trainer_pid(kubeconfig: pathlib.Path) -> int | None:
    """The process of the first running pod, from its containerID (local://PID)."""
    if not kubeconfig.exists():
        return None
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    try:
        pods = requests.get(f"{server}/api/v1/pods", timeout=5).json()["items"]
    except requests.RequestException:
        return None
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            if "running" in status.get("state", {}) and status.get("containerID"):
                return int(status["containerID"].removeprefix("local://"))
    return None


def _group_alive(pid: int) -> bool:
    try:
        os.killpg(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _stop_and_check(process: subprocess.Popen[str], kubeconfig: pathlib.Path, signum: int) -> None:
    """Wait for a pod's process, send `signum`, and check its whole process group ends."""
    def started() -> int | None:
        return -1 if process.poll() is not None else _trainer_pid(kubeconfig)

    pid = wait_until(started, timeout=120, interval=0.2, message="a pod's process to start")
    try:
        assert pid > 0, process.stderr.read() if process.stderr else ""
        process.send_signal(signum)
        process.wait(timeout=60)
        deadline = time.monotonic() + 10
        while _group_alive(pid) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not _group_alive(pid), f"the pod's process group {pid} outlived its parent"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if pid > 0 and _group_alive(pid):
            os.killpg(pid, signal.SIGKILL)


@pytest.mark.slow  # the trainer starts (imports torch) before the signal
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_quickstart_stops_its_trainer_on_a_signal(tmp_path: pathlib.Path, signum: int) -> None:
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    process = subprocess.Popen([*KUBETUNE, "quickstart", "--workdir", str(tmp_path / "qs")],
                               env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    _stop_and_check(process, tmp_path / "qs" / "kubeconfig", signum)


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_local_up_stops_its_pods_on_a_signal(tmp_path: pathlib.Path, signum: int) -> None:
    kubeconfig = tmp_path / "kc"
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    process = subprocess.Popen(
        [*KUBETUNE, "local", "up", "--no-operator", "--kubeconfig", str(kubeconfig), "--workdir",
         str(tmp_path / "work"), "--hf-home", str(tmp_path / "hf")],
        env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert process.stdout is not None
    assert process.stdout.readline().startswith(READY_PREFIX)
    server = yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"]
    job = job_manifest("sleeper", "import time; time.sleep(120)")
    assert requests.post(f"{server}{JOBS}", json=job, timeout=10).status_code == 201
    _stop_and_check(process, kubeconfig, signum)
