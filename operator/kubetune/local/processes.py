"""A container as a local process group: start, wait, and stop the way the kubelet stops one.

The image is not pulled: the command runs in the current Python environment. The first
word `python` (any `pythonX.Y`) is this interpreter, and the virtualenv's `bin` folder
comes first on PATH, so `accelerate`, `torchrun` and console scripts are the installed ones.

Each container gets its own session (process group), so SIGTERM and SIGKILL reach the
launcher and the workers it started, as they would reach every process in a container.

A memory limit (`resources.limits.memory`) is enforced by polling the resident memory of
the process and its descendants every MEMORY_POLL_SECONDS: over the limit, the whole
group is killed (SIGKILL), as the kernel's OOM killer does to a container's cgroup
(memory.oom.group on cgroup v2), and the kubelet reports reason OOMKilled, exit code 137.
Unlike a cgroup, polling misses a spike shorter than the interval, counts no page cache,
and loses track of a descendant that left the process tree (daemonized).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pathlib
import re
import shutil
import signal
import sys
import sysconfig

import psutil

_PYTHON = re.compile(r"^python(\d+(\.\d+)?)?$")
VENV_BIN = sysconfig.get_path("scripts")
MEMORY_POLL_SECONDS = 0.25


def local_argv(argv: list[str], path: str) -> list[str]:
    """The command as it runs here: `python` is this interpreter, other bare names are
    looked up on `path` (the venv's bin first). Raises FileNotFoundError like exec."""
    if not argv:
        raise FileNotFoundError("the container has no command (the local executor cannot run "
                                "an image's entrypoint: set command in the pod spec)")
    first = argv[0]
    base = os.path.basename(first)
    if _PYTHON.match(base):
        return [sys.executable, *argv[1:]]
    if "/" in first and not os.path.exists(first):
        first = base  # an image path such as /usr/local/bin/torchrun: use the local one
    if "/" not in first:
        found = shutil.which(first, path=path)
        if found is None:
            raise FileNotFoundError(f'exec: "{first}": executable file not found in $PATH')
        first = found
    return [first, *argv[1:]]


def search_path(env_path: str | None) -> str:
    """PATH for a container: the venv's bin first, then the container's (or our) PATH."""
    rest = env_path if env_path is not None else os.environ.get("PATH", "")
    return os.pathsep.join(p for p in (VENV_BIN, rest) if p)


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and all its descendants (0 once it is gone)."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0
    total = 0
    for process in processes:
        with contextlib.suppress(psutil.Error):
            total += process.memory_info().rss
    return total


class ContainerProcess:
    """One running container command, its output appended to a log file."""

    def __init__(self, process: asyncio.subprocess.Process, memory_limit: int | None = None) -> None:
        self.process = process
        self.memory_limit = memory_limit
        self.oom_killed = False
        self._memory_watch = (asyncio.create_task(self._watch_memory(memory_limit))
                              if memory_limit is not None else None)

    @classmethod
    async def start(cls, argv: list[str], env: dict[str, str], cwd: pathlib.Path,
                    log_path: pathlib.Path, memory_limit: int | None = None) -> ContainerProcess:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with log_path.open("ab") as log:
            process = await asyncio.create_subprocess_exec(
                *argv, env=env, cwd=str(cwd), stdin=asyncio.subprocess.DEVNULL,
                stdout=log, stderr=asyncio.subprocess.STDOUT, start_new_session=True)
        return cls(process, memory_limit)

    async def _watch_memory(self, limit: int) -> None:
        while self.process.returncode is None:
            used = await asyncio.to_thread(tree_rss, self.process.pid)
            if used > limit and self.process.returncode is None:
                self.oom_killed = True
                self._signal_group(signal.SIGKILL)
                return
            await asyncio.sleep(MEMORY_POLL_SECONDS)

    @property
    def pid(self) -> int:
        return self.process.pid

    async def wait(self) -> int:
        """The exit code as a container runtime reports it (128 + N when killed by signal N)."""
        code = await self.process.wait()
        self._signal_group(signal.SIGKILL)  # what the main process left behind ends with it
        if self._memory_watch is not None:
            self._memory_watch.cancel()
        return 128 - code if code < 0 else code

    async def stop(self, grace_seconds: float) -> None:
        """SIGTERM to the whole group, SIGKILL after the grace period (the kubelet's way)."""
        if self.process.returncode is not None:
            self._signal_group(signal.SIGKILL)
            return
        self._signal_group(signal.SIGTERM)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self.process.wait()), grace_seconds)
        self._signal_group(signal.SIGKILL)
        await self.process.wait()
        # The watch ends with the process; wait for it, so that stopping the cluster never
        # closes the loop on a pending task ("Task was destroyed but it is pending").
        if self._memory_watch is not None:
            self._memory_watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._memory_watch

    def _signal_group(self, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, sig)
