"""The local executor: the Job controller and a kubelet for one machine, over the API.

It watches batch/v1 Jobs and Pods in all namespaces through the API server's HTTP API,
like any controller:

- Job events (and events of the Pods a Job owns) queue the Job for a reconcile, which
  reads the Job and its Pods, asks `job_controller.plan` what to do, creates and deletes
  Pods and writes the Job's status. A Job with activeDeadlineSeconds is looked at again
  when its deadline passes.
- Every new Pod gets a `PodRunner` (scheduling, volumes, env, the processes, its status).
  A deleted Pod (deleted by a user, by the Job controller on suspend or completion, or
  garbage-collected with its Job) has its processes stopped: SIGTERM, then SIGKILL after
  the pod's terminationGracePeriodSeconds.

- A finished Job with ttlSecondsAfterFinished is deleted when its TTL has passed, as the
  TTL-after-finished controller does (`ttl.py`).

`ExecutorThread` runs it on its own event loop in a background thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import pathlib
import threading
from typing import Any

from .addresses import AddressBook
from .client import ApiClient, ApiError, Informer, Object
from .job_controller import JobMemory, plan
from .job_pods import CONTROLLER_UID, controller_uid, is_indexed, pod_for_job
from .kubelet import KubeletContext, PodRunner
from .ttl import deletion_options, seconds_until_expiry
from .volumes import WorkDir

log = logging.getLogger(__name__)

_REQUEUE_AFTER_ERROR_SECONDS = 1.0
_NAME_ATTEMPTS = 5


class LocalExecutor:
    """Runs the Pods of Jobs (and any other Pod) as local processes. Async; see ExecutorThread."""

    def __init__(self, api: ApiClient, workdir: str | pathlib.Path, *,
                 extra_pod_env: dict[str, str] | None = None, retry_seconds: float = 1.0,
                 shutdown_grace_seconds: float = 5.0) -> None:
        self.api = api
        self.workdir = WorkDir(pathlib.Path(workdir).resolve())
        self.addresses = AddressBook()
        self.kubelet = KubeletContext(api, self.workdir, self.addresses,
                                      dict(extra_pod_env or {}), retry_seconds)
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.runners: dict[str, PodRunner] = {}  # pod uid -> its runner, until the pod is deleted
        self._stopping: dict[asyncio.Task[None], PodRunner] = {}  # deleted pods shutting down
        self._memory: dict[str, JobMemory] = {}  # Job uid -> what the controller remembers
        self._job_paths: dict[str, str] = {}  # Job uid -> its API path
        self._queue: asyncio.Queue[str] = asyncio.Queue()
        self._queued: set[str] = set()
        self._tasks: list[asyncio.Task[Any]] = []
        self._jobs = Informer(api, "/apis/batch/v1/jobs", self._on_job)
        self._pods = Informer(api, "/api/v1/pods", self._on_pod)

    async def start(self, timeout: float = 10.0) -> None:
        self.workdir.root.mkdir(parents=True, exist_ok=True)
        self._tasks = [asyncio.create_task(self._jobs.run(), name="jobs informer"),
                       asyncio.create_task(self._pods.run(), name="pods informer"),
                       asyncio.create_task(self._work(), name="job controller")]
        await asyncio.wait_for(asyncio.gather(self._jobs.synced.wait(), self._pods.synced.wait()),
                               timeout)

    async def stop(self) -> None:
        """Stop watching, then stop every pod's processes (grace capped for a quick exit)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        # Pods still in their grace period get the shorter shutdown grace too.
        runners = [*self.runners.values(), *self._stopping.values()]
        await asyncio.gather(*(runner.terminate(self.shutdown_grace_seconds) for runner in runners))
        for task in list(self._stopping):
            task.cancel()
        self.runners.clear()

    # --- events --------------------------------------------------------------------------

    async def _on_job(self, event_type: str, job: Object) -> None:
        self._enqueue(job["metadata"]["uid"])

    async def _on_pod(self, event_type: str, pod: Object) -> None:
        uid = pod["metadata"]["uid"]
        gone = event_type == "DELETED" or pod["metadata"].get("deletionTimestamp")
        runner = self.runners.get(uid)
        if gone and runner is not None:
            del self.runners[uid]
            # Not awaited here: a long grace period must not hold up other events.
            stopping = asyncio.create_task(runner.terminate(), name=f"stop {pod['metadata']['name']}")
            self._stopping[stopping] = runner
            stopping.add_done_callback(lambda task: self._stopping.pop(task, None))
        elif not gone and runner is None and (pod.get("status") or {}).get("phase", "Pending") == "Pending":
            self.runners[uid] = PodRunner(self.kubelet, pod)
            self.runners[uid].start()
        owner = controller_uid(pod)
        if owner is not None:
            self._enqueue(owner)

    def _enqueue(self, job_uid: str) -> None:
        if job_uid not in self._queued:
            self._queued.add(job_uid)
            self._queue.put_nowait(job_uid)

    def _enqueue_later(self, job_uid: str, seconds: float) -> None:
        asyncio.get_running_loop().call_later(seconds, self._enqueue, job_uid)

    # --- the Job controller --------------------------------------------------------------

    async def _work(self) -> None:
        while True:
            uid = await self._queue.get()
            self._queued.discard(uid)
            try:
                await self._reconcile(uid)
            except Exception as error:
                log.warning("reconciling Job %s failed (%s); retrying", uid, error)
                self._enqueue_later(uid, _REQUEUE_AFTER_ERROR_SECONDS)

    async def _reconcile(self, uid: str) -> None:
        cached = self._jobs.cache.get(uid)
        path = self._job_paths.get(uid) or (_job_path(cached) if cached else None)
        job = await self.api.get_or_none(path) if path else None
        if job is None or job["metadata"]["uid"] != uid:
            self._forget_job(uid)  # deleted: its pods go with it (garbage collection)
            return
        self._job_paths[uid] = path
        meta, spec = job["metadata"], job.get("spec") or {}
        namespace = meta["namespace"]
        listing = await self.api.list(f"/api/v1/namespaces/{namespace}/pods",
                                      label_selector=f"{CONTROLLER_UID}={uid}")
        pods = [p for p in listing["items"] if controller_uid(p) == uid]
        memory = self._memory.setdefault(uid, JobMemory())
        conditions = (job.get("status") or {}).get("conditions") or []
        finished = any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                       for c in conditions)
        if is_indexed(job) and not finished:
            self.addresses.reserve_job(uid, namespace, meta["name"],
                                       (spec.get("template") or {}).get("spec", {}).get("subdomain"),
                                       spec.get("completions") or 1)
        result = plan(job, pods, memory)
        for name in result.delete:
            await self.api.delete(f"/api/v1/namespaces/{namespace}/pods/{name}")
        for index in result.create:
            await self._create_pod(job, index)
        await self._write_status(path, job.get("status") or {}, result.status)
        if any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
               for c in result.status.get("conditions", [])):
            self.addresses.release_job(uid)
        if result.recheck_after is not None:
            self._enqueue_later(uid, result.recheck_after + 0.05)
        await self._expire(path, {**job, "status": result.status})

    async def _expire(self, path: str, job: Object) -> None:
        """ttlSecondsAfterFinished: delete the finished Job once due, else look again then."""
        remaining = seconds_until_expiry(job)
        if remaining is None:
            return
        if remaining > 0:
            self._enqueue_later(job["metadata"]["uid"], remaining + 0.05)
            return
        try:
            await self.api.request("DELETE", path, deletion_options(job))
        except ApiError as error:
            if error.status not in (404, 409):  # gone, or a new Job of that name
                raise

    async def _create_pod(self, job: Object, index: int | None) -> None:
        namespace = job["metadata"]["namespace"]
        for _ in range(_NAME_ATTEMPTS):  # a clash of random suffixes: draw again
            try:
                await self.api.create(f"/api/v1/namespaces/{namespace}/pods", pod_for_job(job, index))
                return
            except ApiError as error:
                if error.status != 409:
                    raise

    async def _write_status(self, path: str, old: Object, new: Object) -> None:
        if old == new:
            return
        # A merge patch keeps keys it does not mention: clear the ones that went away.
        patch = {**{key: None for key in old if key not in new}, **new}
        await self.api.merge_patch(path + "/status", {"status": patch})

    def _forget_job(self, uid: str) -> None:
        self._memory.pop(uid, None)
        self._job_paths.pop(uid, None)
        self.addresses.release_job(uid)


def _job_path(job: Object) -> str:
    meta = job["metadata"]
    return f"/apis/batch/v1/namespaces/{meta['namespace']}/jobs/{meta['name']}"


class ExecutorThread:
    """A LocalExecutor on its own event loop in a daemon thread (for LocalCluster and tests)."""

    def __init__(self, kubeconfig: str | pathlib.Path, workdir: str | pathlib.Path, *,
                 extra_pod_env: dict[str, str] | None = None, retry_seconds: float = 1.0,
                 shutdown_grace_seconds: float = 5.0) -> None:
        self._args = (kubeconfig, workdir)
        self._options: dict[str, Any] = {"extra_pod_env": extra_pod_env, "retry_seconds": retry_seconds,
                                         "shutdown_grace_seconds": shutdown_grace_seconds}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._stopping: asyncio.Event | None = None
        self.executor: LocalExecutor | None = None

    def start(self, timeout: float = 15.0) -> ExecutorThread:
        started = threading.Event()
        failure: list[BaseException] = []

        async def serve() -> None:
            self._stopping = asyncio.Event()
            kubeconfig, workdir = self._args
            async with ApiClient.from_kubeconfig(kubeconfig) as api:
                self.executor = LocalExecutor(api, workdir, **self._options)
                try:
                    await self.executor.start()
                except BaseException as error:
                    failure.append(error)
                    started.set()
                    await self.executor.stop()
                    return
                started.set()
                try:
                    await self._stopping.wait()
                finally:
                    await self.executor.stop()

        def run() -> None:
            self._loop = asyncio.new_event_loop()
            try:
                self._loop.run_until_complete(serve())
            finally:
                self._loop.close()

        self._thread = threading.Thread(target=run, name="kubetune-executor", daemon=True)
        self._thread.start()
        if not started.wait(timeout):
            raise TimeoutError("the local executor did not start in time")
        if failure:
            raise RuntimeError(f"the local executor did not start: {failure[0]!r}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        if self._loop is not None and self._stopping is not None and not self._loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed in between
                self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread is not None:
            self._thread.join(timeout)
        self._thread = None

    def __enter__(self) -> ExecutorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
