"""Poll running trainers' GET /progress and write status.progress when it changed.

One loop for all jobs (not a task per job): every interval it asks each running
FinetuneJob's rank-0 pod, a few at a time. An unreachable pod is skipped, never fatal.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import aiohttp

from ..api.names import train_job_name
from . import observe as o
from .monotonic import forward_only
from .ownership import belongs_to
from .reconcile import now_text
from .state import Key, OperatorState
from .status import checkpoint_from_report, progress_changed, progress_from_report

log = logging.getLogger("kubetune.progress")
CONCURRENCY = 16


async def poll_forever(state: OperatorState) -> None:
    timeout = aiohttp.ClientTimeout(total=min(5.0, state.settings.progress_interval_seconds))
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            await poll_once(state, session)
            update_phase_counts(state)
            await asyncio.sleep(state.settings.progress_interval_seconds)


async def poll_once(state: OperatorState, session: aiohttp.ClientSession) -> int:
    """Poll every running job once; returns how many answered."""
    limit = asyncio.Semaphore(CONCURRENCY)
    targets = list(_running_targets(state))

    async def poll(key: Key, ip: str) -> bool:
        async with limit:
            return await _poll_job(state, session, key, ip)

    answers = await asyncio.gather(*(poll(k, ip) for k, ip in targets), return_exceptions=True)
    return sum(a is True for a in answers)


def _running_targets(state: OperatorState):
    for key, body in list(state.finetunejobs.items()):
        if state.current_status("FinetuneJob", key).get("phase") != "Running":
            continue
        namespace, name = key
        job = state.jobs.get((namespace, train_job_name(name)))
        if not belongs_to(job, [body["metadata"].get("uid")]):
            continue  # an earlier run's Job: never polled for this job's status
        run = o.observe_run(job, state.pods_of_job(job))
        if run.progress_ip:
            yield key, run.progress_ip


async def _poll_job(state: OperatorState, session: aiohttp.ClientSession, key: Key,
                    ip: str) -> bool:
    url = o.progress_url(ip, state.settings.progress_port)
    try:
        async with session.get(url) as response:
            if response.status != 200:
                return False
            report: dict[str, Any] = await response.json()
    except (aiohttp.ClientError, TimeoutError, ValueError) as error:
        log.debug("progress of %s/%s unavailable: %s", *key, error)
        return False
    namespace, name = key
    # Under the job's lock, against its status now: the job may have ended (and its final
    # progress been written) while the trainer was being asked.
    async with state.locks[("FinetuneJob", *key)]:
        old = state.current_status("FinetuneJob", key)
        if old.get("phase") != "Running" or key not in state.finetunejobs:
            return True
        progress = progress_from_report(report, now_text())
        if (old.get("progress") or {}).get("plateau") and "plateau" not in progress:
            progress["plateau"] = None  # improving again: a merge patch keeps what it omits
        changes = {}
        if progress_changed(old.get("progress"), progress):
            changes["progress"] = progress
        checkpoint = checkpoint_from_report(report)
        if checkpoint and checkpoint != old.get("checkpoint"):
            changes["checkpoint"] = checkpoint
        changes = forward_only(old, changes)
        if changes:
            state.metrics.record_progress(namespace, name, changes.get("progress") or {})
            stored = await state.kube.patch_status("FinetuneJob", namespace, name, changes,
                                                   guard=forward_only)
            if stored is not None:
                state.written[("FinetuneJob", *key)] = stored
    return True


def update_phase_counts(state: OperatorState) -> None:
    counts: dict[tuple[str, str, str], int] = {}
    for kind in ("FinetuneJob", "EvalJob"):
        for key in state.bodies(kind):
            phase = state.current_status(kind, key).get("phase") or "Pending"
            counts[(kind, key[0], phase)] = counts.get((kind, key[0], phase), 0) + 1
    state.metrics.set_phase_counts(counts)
