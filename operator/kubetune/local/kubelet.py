"""One Pod's life on this machine: schedule, set up, run its containers, report status.

`PodRunner` does what the scheduler and the kubelet would, and writes what they would
through the pod's `/status`:

- Pending with PodScheduled False / Unschedulable while a claim it mounts does not exist
  (`persistentvolumeclaim "x" not found`), retried every second;
- Pending with the container waiting in ContainerCreating (a volume's ConfigMap or Secret
  is missing) or CreateContainerConfigError (`secret "x" not found`), retried too;
- Running with `podIP` (its loopback address) and `running.startedAt`;
- Succeeded / Failed with `terminated` (exitCode, reason Completed or Error, the
  termination message, startedAt, finishedAt); OOMKilled (exit code 137) when the
  container's processes went over `resources.limits.memory` (see processes.py).

Init containers run one after the other before the containers, which run side by side.
`terminate()` stops the processes as the kubelet does on deletion: SIGTERM to each process
group, SIGKILL after the pod's terminationGracePeriodSeconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import logging
import os
import pathlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from kubernetes.utils import parse_quantity

from .addresses import AddressBook
from .client import ApiClient, Object
from .environment import HOST_IP, ContainerConfigError, ObjectReader, container_env
from .expansion import expand, rewrite_hosts
from .job_pods import completion_index, controller_uid
from .processes import ContainerProcess, local_argv, search_path
from .volumes import VolumeNotReady, WorkDir, container_paths, missing_claim, prepare_volumes

log = logging.getLogger(__name__)

DEFAULT_GRACE_SECONDS = 30
TERMINATION_MESSAGE_LIMIT = 4096
FALLBACK_LOG_LINES, FALLBACK_LOG_BYTES = 80, 2048
START_ERROR_EXIT_CODE = 128
# Variables of the executor's own environment that must not leak into pods.
HIDDEN_HOST_ENV = ("KUBECONFIG",)


@dataclass
class KubeletContext:
    """What every PodRunner shares."""

    api: ApiClient
    workdir: WorkDir
    addresses: AddressBook
    extra_env: dict[str, str] = field(default_factory=dict)
    """Added to every container's env; wins over the pod's variables of the same name."""
    retry_seconds: float = 1.0


@dataclass
class PreparedContainer:
    name: str
    argv: list[str]
    env: dict[str, str]
    cwd: pathlib.Path
    log: pathlib.Path
    termination_file: pathlib.Path
    fallback_to_logs: bool
    memory_limit: int | None = None


class PodRunner:
    def __init__(self, context: KubeletContext, pod: Object) -> None:
        self.ctx, self.pod = context, pod
        meta = pod["metadata"]
        self.namespace, self.name = meta["namespace"], meta["name"]
        self.spec: dict[str, Any] = pod.get("spec") or {}
        self.folder = context.workdir.pod(self.namespace, self.name)
        self.processes: dict[str, ContainerProcess] = {}
        self.ip: str | None = None
        self._occupied = False
        self._status: dict[str, Any] = {"phase": "Pending", "conditions": [],
                                        "hostIP": HOST_IP, "hostIPs": [{"ip": HOST_IP}]}
        self._written: dict[str, Any] | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def grace_seconds(self) -> float:
        grace = self.spec.get("terminationGracePeriodSeconds")
        return float(DEFAULT_GRACE_SECONDS if grace is None else grace)

    def start(self) -> asyncio.Task[None]:
        self._task = asyncio.create_task(self._run(), name=f"pod {self.namespace}/{self.name}")
        return self._task

    async def terminate(self, grace_cap: float | None = None) -> None:
        """Stop the pod (it was deleted, or the executor stops): no status is written."""
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        grace = self.grace_seconds if grace_cap is None else min(self.grace_seconds, grace_cap)
        await asyncio.gather(*(p.stop(grace) for p in self.processes.values()))
        await self._release_address()

    # --- the pod's life ------------------------------------------------------------------

    async def _run(self) -> None:
        try:
            await self._schedule()
            containers = await self._set_up()
            await self._occupy_address()
            await self._run_containers(containers)
        except asyncio.CancelledError:
            raise  # terminate() stops the processes and gives the address back
        except Exception:  # a bug here must not leave processes behind without a word
            log.exception("pod %s/%s failed in the local executor", self.namespace, self.name)
            await asyncio.gather(*(p.stop(0) for p in self.processes.values()))
        await self._release_address()

    async def _schedule(self) -> None:
        while (problem := await missing_claim(self.ctx.api, self.pod)) is not None:
            self._condition("PodScheduled", "False", "Unschedulable", problem)
            await self._write()
            await asyncio.sleep(self.ctx.retry_seconds)
        self._condition("PodScheduled", "True")
        self.ip = self._address()
        self._status.update(podIP=self.ip, podIPs=[{"ip": self.ip}], startTime=_now())
        await self._write()

    def _address(self) -> str:
        """Indexed Jobs reserve an address per index; other pods get one of their own."""
        job_uid, index = controller_uid(self.pod), completion_index(self.pod)
        if job_uid is not None and index is not None:
            reserved = self.ctx.addresses.job_address(job_uid, index)
            if reserved is not None:
                return reserved
        return self.ctx.addresses.allocate()

    async def _set_up(self) -> list[PreparedContainer]:
        all_containers = [*self.spec.get("initContainers", []), *self.spec.get("containers", [])]
        while True:
            reader = ObjectReader(self.ctx.api, self.namespace)
            try:
                backing = await prepare_volumes(self.ctx.api, reader, self.pod, self.ctx.workdir)
                return [await self._prepare(c, backing, reader, len(all_containers) == 1)
                        for c in all_containers]
            except VolumeNotReady as problem:
                self._waiting_all("ContainerCreating", str(problem))
            except ContainerConfigError as problem:
                self._waiting_all("CreateContainerConfigError", str(problem))
            await self._write()
            await asyncio.sleep(self.ctx.retry_seconds)

    async def _prepare(self, container: dict[str, Any], backing: dict[str, pathlib.Path],
                       reader: ObjectReader, only: bool) -> PreparedContainer:
        assert self.ip is not None
        name = container["name"]
        workdir = self.ctx.workdir
        termination_file = workdir.termination_file(self.namespace, self.name, name, only)
        paths = container_paths(container, backing, termination_file)
        hosts = self.ctx.addresses.host_names(self.namespace)

        def local(value: str) -> str:
            return rewrite_hosts(paths.translate(value), hosts)

        in_container = await container_env(reader, self.pod, container, self.ip)
        env = {key: local(value) for key, value in in_container.items()}
        env.update(self.ctx.extra_env)  # local values, never rewritten
        # Literal paths are rewritten first, then $(VAR) takes the (rewritten) values.
        argv = [expand(local(word), env)
                for word in [*container.get("command", []), *container.get("args", [])]]

        process_env = {k: v for k, v in os.environ.items() if k not in HIDDEN_HOST_ENV}
        process_env["HOSTNAME"] = self.spec.get("hostname") or self.name
        process_env.update(env)
        process_env["PATH"] = search_path(env.get("PATH"))
        local_tmp = paths.translate("/tmp")
        if local_tmp != "/tmp" and "TMPDIR" not in env:
            process_env["TMPDIR"] = local_tmp  # the pod's /tmp volume, for tempfile users
        working_dir = container.get("workingDir")
        cwd = pathlib.Path(paths.translate(working_dir)) if working_dir else self.folder
        termination_file.parent.mkdir(parents=True, exist_ok=True)
        termination_file.write_text("")
        return PreparedContainer(
            name=name, argv=argv, env=process_env, cwd=cwd if cwd.is_dir() else self.folder,
            log=workdir.log(self.namespace, self.name, name, only),
            termination_file=termination_file,
            fallback_to_logs=container.get("terminationMessagePolicy") == "FallbackToLogsOnError",
            memory_limit=memory_limit(container))

    async def _occupy_address(self) -> None:
        assert self.ip is not None
        await self.ctx.addresses.occupy(self.ip)
        self._occupied = True

    async def _release_address(self) -> None:
        if self._occupied and self.ip is not None:
            self._occupied = False
            await self.ctx.addresses.vacate(self.ip)

    async def _run_containers(self, prepared: list[PreparedContainer]) -> None:
        init_names = {c["name"] for c in self.spec.get("initContainers", [])}
        init = [c for c in prepared if c.name in init_names]
        main = [c for c in prepared if c.name not in init_names]
        self._condition("Initialized", "False", "ContainersNotInitialized")
        for container in init:
            if await self._run_one(container, ready=False) != 0:
                return await self._finish("Failed")
        self._condition("Initialized", "True")
        self._waiting_all("ContainerCreating", "", only=[c.name for c in main])
        codes = await asyncio.gather(*(self._run_one(c, ready=True) for c in main))
        await self._finish("Succeeded" if all(code == 0 for code in codes) else "Failed")

    async def _run_one(self, container: PreparedContainer, *, ready: bool) -> int:
        started = _now()
        try:
            argv = local_argv(container.argv, container.env["PATH"])
            process = await ContainerProcess.start(argv, container.env, container.cwd, container.log,
                                                   container.memory_limit)
        except OSError as error:
            self._terminated(container.name, START_ERROR_EXIT_CODE, "StartError", str(error), started)
            return START_ERROR_EXIT_CODE
        self.processes[container.name] = process
        self._set_container(container.name, {"running": {"startedAt": started}},
                            ready=ready, started=True, pid=process.pid)
        self._status["phase"] = "Running"
        self._update_ready()
        await self._write()
        code = await process.wait()
        reason = "OOMKilled" if process.oom_killed else "Completed" if code == 0 else "Error"
        self._terminated(container.name, code, reason, _termination_message(container, code), started)
        self._update_ready()
        await self._write()
        return code

    async def _finish(self, phase: str) -> None:
        self._status["phase"] = phase
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        self._condition("Ready", "False", reason)
        self._condition("ContainersReady", "False", reason)
        await self._write()

    # --- status --------------------------------------------------------------------------

    def _condition(self, kind: str, status: str, reason: str = "", message: str = "") -> None:
        conditions: list[dict[str, Any]] = self._status["conditions"]
        existing = next((c for c in conditions if c["type"] == kind), None)
        if existing and (existing["status"], existing.get("reason", ""), existing.get(
                "message", "")) == (status, reason, message):
            return
        new = {"type": kind, "status": status, "lastProbeTime": None,
               "lastTransitionTime": _now() if not existing or existing["status"] != status
               else existing["lastTransitionTime"]}
        if reason:
            new["reason"] = reason
        if message:
            new["message"] = message
        if existing:
            conditions[conditions.index(existing)] = new
        else:
            conditions.append(new)

    def _set_container(self, name: str, state: dict[str, Any], *, ready: bool = False,
                       started: bool = False, pid: int | None = None) -> None:
        statuses: list[dict[str, Any]] = self._status.setdefault("containerStatuses", [])
        image = next((c.get("image", "") for c in [*self.spec.get("initContainers", []),
                                                   *self.spec.get("containers", [])]
                      if c["name"] == name), "")
        entry = {"name": name, "state": state, "lastState": {}, "ready": ready, "restartCount": 0,
                 "image": image, "imageID": "", "started": started}
        if pid is not None:
            entry["containerID"] = f"local://{pid}"
        existing = next((s for s in statuses if s["name"] == name), None)
        if existing is not None:
            entry.setdefault("containerID", existing.get("containerID"))
            statuses[statuses.index(existing)] = entry
        else:
            statuses.append(entry)

    def _waiting_all(self, reason: str, message: str, only: list[str] | None = None) -> None:
        names = only if only is not None else [c["name"] for c in self.spec.get("containers", [])]
        for name in names:
            waiting = {"reason": reason, **({"message": message} if message else {})}
            self._set_container(name, {"waiting": waiting})

    def _terminated(self, name: str, code: int, reason: str, message: str, started: str) -> None:
        terminated = {"exitCode": code, "reason": reason, "startedAt": started, "finishedAt": _now()}
        if message:
            terminated["message"] = message
        self._set_container(name, {"terminated": terminated}, started=False)

    def _update_ready(self) -> None:
        main = {c["name"] for c in self.spec.get("containers", [])}
        statuses = [s for s in self._status.get("containerStatuses", []) if s["name"] in main]
        ready = bool(statuses) and all(s["ready"] and "running" in s["state"] for s in statuses)
        value, reason = ("True", "") if ready else ("False", "ContainersNotReady")
        self._condition("ContainersReady", value, reason)
        self._condition("Ready", value, reason)

    async def _write(self) -> None:
        if self._status == self._written:
            return
        snapshot = copy.deepcopy(self._status)
        await self.ctx.api.merge_patch(
            f"/api/v1/namespaces/{self.namespace}/pods/{self.name}/status", {"status": snapshot})
        self._written = snapshot


def memory_limit(container: dict[str, Any]) -> int | None:
    """`resources.limits.memory` in bytes (a Kubernetes quantity such as 512Mi or 1G)."""
    limit = ((container.get("resources") or {}).get("limits") or {}).get("memory")
    return None if limit is None else int(parse_quantity(limit))


def _termination_message(container: PreparedContainer, code: int) -> str:
    """The termination file's text; for FallbackToLogsOnError and a failure without one,
    the end of the log (as the kubelet does)."""
    try:
        with container.termination_file.open("rb") as file:
            message = file.read(TERMINATION_MESSAGE_LIMIT).decode("utf-8", "replace")
    except OSError:
        message = ""
    if message.strip() or not container.fallback_to_logs or code == 0:
        return message
    try:
        tail = container.log.read_bytes()[-FALLBACK_LOG_BYTES:]
    except OSError:
        return ""
    return "\n".join(tail.decode("utf-8", "replace").splitlines()[-FALLBACK_LOG_LINES:])


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
