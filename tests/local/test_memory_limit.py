"""A container over its memory limit is killed: OOMKilled, exit code 137, as the kubelet
reports a container the kernel's OOM killer ended (https://kubernetes.io/docs/concepts/
configuration/manage-resources-containers/#how-pods-with-resource-limits-are-run; with
cgroup v2 the whole container is killed: memory.oom.group)."""

from __future__ import annotations

import pytest

from .helpers import JOBS, RestApi, condition, job_manifest, wait_until

# Touches ~300 MB (bytes * n writes every page) in a child process, then waits.
GREEDY = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, '-c', "x = b'x' * (300 << 20); import time; time.sleep(60)"])
time.sleep(60)
"""


def _terminated(api: RestApi, job: str) -> dict | None:
    pods = api.pods_of(job)
    if not pods or pods[0]["status"].get("phase") != "Failed":
        return None
    return pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]


def test_going_over_the_memory_limit_kills_the_container_as_oomkilled(api: RestApi) -> None:
    api.create(JOBS, job_manifest("greedy", GREEDY, backoffLimit=0,
                                  container={"resources": {"limits": {"memory": "100Mi"}}}))
    terminated = wait_until(lambda: _terminated(api, "greedy"), timeout=30,
                            message="the container to be killed")
    assert (terminated["reason"], terminated["exitCode"]) == ("OOMKilled", 137)
    wait_until(lambda: condition(api.job("greedy"), "Failed"), message="the Job to fail")


def test_staying_under_the_limit_is_fine(api: RestApi) -> None:
    api.create(JOBS, job_manifest("modest", "x = b'x' * (20 << 20); print(len(x))",
                                  container={"resources": {"limits": {"memory": "512Mi"}}}))
    wait_until(lambda: condition(api.job("modest"), "Complete"), message="modest Complete")


@pytest.mark.asyncio
async def test_stopping_a_container_ends_its_memory_watch(tmp_path) -> None:
    """Stopping the executor (Ctrl-C on `local up`) must leave no pending task behind: the
    memory watch ends with its container."""
    import sys

    from kubetune.local.processes import ContainerProcess

    process = await ContainerProcess.start([sys.executable, "-c", "import time; time.sleep(60)"],
                                           {}, tmp_path, tmp_path / "log", memory_limit=1 << 30)
    await process.stop(grace_seconds=1)
    assert process._memory_watch is not None and process._memory_watch.done()
