"""`kubectl logs` against the emulator with the local executor: the container's output.

kube-apiserver serves `pods/log` as text/plain from the node's kubelet (kubernetes
pkg/registry/core/pod/rest/log.go; https://kubernetes.io/docs/reference/kubectl/generated/
kubectl_logs/). Here the executor's log files stand in for the kubelet's.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest
from kubetune.emulator import EmulatorThread
from kubetune.local.cluster import attach_pod_logs

from .helpers import JOBS, PODS, RestApi, job_manifest, wait_until

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
COUNT_TO_FIVE = "for i in range(1, 6): print(f'line {i}', flush=True)"


@pytest.fixture
def kubectl(emulator: EmulatorThread, executor, workdir: pathlib.Path, tmp_path: pathlib.Path):
    attach_pod_logs(emulator, workdir)
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubectl-config")

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], text=True,
                              capture_output=True, timeout=60, env={**os.environ, "HOME": str(tmp_path)})
    return run


def _finished_pod(api: RestApi, job: str) -> str:
    def done() -> str | None:
        pods = api.pods_of(job)
        return pods[0]["metadata"]["name"] if pods and pods[0]["status"]["phase"] == "Succeeded" else None
    return wait_until(done, message=f"the pod of {job} to succeed")


def test_kubectl_logs_prints_the_output_and_tail_keeps_the_last_lines(api: RestApi, kubectl) -> None:
    api.create(JOBS, job_manifest("counter", COUNT_TO_FIVE))
    pod = _finished_pod(api, "counter")
    result = kubectl("logs", pod)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "".join(f"line {i}\n" for i in range(1, 6))
    assert kubectl("logs", pod, "--tail=2").stdout == "line 4\nline 5\n"
    assert kubectl("logs", "job/counter", "--tail=1").stdout == "line 5\n"
    assert kubectl("logs", pod, "--limit-bytes=8").stdout == "line 1\nl"


def test_kubectl_logs_sends_a_long_log_whole(api: RestApi, kubectl) -> None:
    api.create(JOBS, job_manifest("chatty", "for i in range(30000): print(f'line {i:08d}')"))
    pod = _finished_pod(api, "chatty")
    lines = kubectl("logs", pod).stdout.splitlines()
    assert len(lines) == 30000 and lines[-1] == "line 00029999"


def test_kubectl_logs_follow_streams_until_the_container_ends(api: RestApi, kubectl,
                                                              tmp_path: pathlib.Path) -> None:
    """`-f` streams while the container runs and ends when it has terminated."""
    gate = tmp_path / "go"
    slow = ("import pathlib, sys, time\nprint('started', flush=True)\n"
            "while not pathlib.Path(sys.argv[1]).exists(): time.sleep(0.05)\n"
            "print('finished', flush=True)")
    api.create(JOBS, job_manifest("slow", slow, container={"args": [str(gate)]}))
    pod = wait_until(lambda: [p for p in api.pods_of("slow") if p["status"]["phase"] == "Running"],
                     message="a running pod")[0]["metadata"]["name"]
    follower = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(tmp_path / "kubectl-config"), "logs", "-f", pod], text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env={**os.environ, "HOME": str(tmp_path)})
    try:
        assert follower.stdout is not None
        assert follower.stdout.readline() == "started\n"  # streamed while the container runs
        assert follower.poll() is None
        gate.write_text("")
        out, err = follower.communicate(timeout=30)
    finally:
        follower.kill()
    assert follower.returncode == 0, err
    assert out == "finished\n"


def test_kubectl_logs_of_one_container_and_of_a_pod_not_started(api: RestApi, kubectl) -> None:
    """`-c` picks a container of a pod with several; a pod whose container waits (here for a
    ConfigMap volume) answers 400 `... is waiting to start: ContainerCreating`, as the kubelet."""
    two = {"metadata": {"name": "two"}, "spec": {"restartPolicy": "Never", "containers": [
        {"name": name, "image": "python:3.11", "command": ["python", "-c", f"print('{name} says hi')"]}
        for name in ("first", "second")]}}
    api.create(PODS, two)
    wait_until(lambda: api.get(f"{PODS}/two")["status"]["phase"] == "Succeeded", message="pod two")
    assert kubectl("logs", "two", "-c", "second").stdout == "second says hi\n"
    no_choice = kubectl("logs", "two", "--all-containers=false", "-c", "third")
    assert no_choice.returncode != 0 and "container third is not valid for pod two" in no_choice.stderr

    stuck = {"metadata": {"name": "stuck"}, "spec": {
        "restartPolicy": "Never", "volumes": [{"name": "cfg", "configMap": {"name": "absent"}}],
        "containers": [{"name": "main", "image": "python:3.11", "command": ["python", "-c", "1"],
                        "volumeMounts": [{"name": "cfg", "mountPath": "/cfg"}]}]}}
    api.create(PODS, stuck)
    wait_until(lambda: api.get(f"{PODS}/stuck")["status"].get("containerStatuses"),
               message="the stuck pod's status")
    waiting = kubectl("logs", "stuck")
    assert waiting.returncode != 0
    assert 'container "main" in pod "stuck" is waiting to start: ContainerCreating' in waiting.stderr
