"""Races between watch streams, pinned with a recording stand-in for the Kubernetes API."""

from __future__ import annotations

import asyncio
import copy

from kubetune.operator.metrics import Metrics
from kubetune.operator.reconcile import sync_finetune
from kubetune.operator.settings import Settings
from kubetune.operator.state import OperatorState
from kubetune.operator.status import Fit

from .cluster import FINETUNE_JOB


class RecordingKube:
    """Answers like the API server would for a FinetuneJob that was just deleted."""

    def __init__(self, exists: bool) -> None:
        self.exists = exists
        self.calls: list[str] = []

    async def still_exists(self, kind, namespace, name, uid) -> bool:
        self.calls.append("get")
        return self.exists

    async def create(self, obj):
        self.calls.append(f"create {obj['kind']}")
        meta = {**obj["metadata"], "uid": f"uid-{obj['kind']}", "resourceVersion": "1"}
        return {**obj, "metadata": meta, "status": {}}

    async def set_controller(self, obj, owner):
        self.calls.append(f"hand {obj['kind']} to {owner['kind']}")
        return {**obj, "metadata": {**obj["metadata"], "ownerReferences": [owner]}}

    async def patch_status(self, kind, namespace, name, status, guard=None):
        self.calls.append("patch status")
        return status


async def _unknown_fit(body, spec) -> Fit:
    return Fit(None, "Unknown", "")


def _state(kube: RecordingKube) -> OperatorState:
    state = OperatorState(settings=Settings(), kube=kube, metrics=Metrics(), check_fit=_unknown_fit)
    body = copy.deepcopy(FINETUNE_JOB)
    body["metadata"].update(uid="u-1", generation=1)
    state.finetunejobs[("team-a", "router")] = body
    return state


def test_a_deleted_job_whose_children_vanished_first_gets_no_new_children():
    # The garbage collector's deletion of the Job arrived before the FinetuneJob's own
    # DELETED event: the cache still has the FinetuneJob, but no Job.
    kube = RecordingKube(exists=False)
    state = _state(kube)
    asyncio.run(sync_finetune(state, ("team-a", "router")))
    assert kube.calls == ["get"]
    assert ("team-a", "router") not in state.finetunejobs


def test_a_live_job_gets_its_config_and_job():
    kube = RecordingKube(exists=True)
    asyncio.run(sync_finetune(_state(kube), ("team-a", "router")))
    assert kube.calls == ["get", "create ConfigMap", "create Job", "hand ConfigMap to Job",
                          "patch status"]
