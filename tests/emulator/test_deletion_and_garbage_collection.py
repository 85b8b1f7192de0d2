"""Finalizers hold objects with deletionTimestamp; the garbage collector deletes dependents
asynchronously, after the DELETE of their owner has returned, as on a real cluster.

References: https://kubernetes.io/docs/concepts/architecture/garbage-collection/ (owner uid,
background/foreground/orphan cascading, blockOwnerDeletion),
https://kubernetes.io/docs/tasks/administer-cluster/use-cascading-deletion/ (the
`foregroundDeletion` and `orphan` finalizers, `propagationPolicy`), and
https://kubernetes.io/docs/concepts/workloads/controllers/job/#job-termination-and-cleanup
(batch/v1 Jobs orphan their Pods unless asked otherwise; kubectl asks for background).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import time
from collections.abc import Callable
from typing import Any

import pytest
from emulator_helpers import JOB_SPEC, POD_SPEC, RawApi
from kubetune.emulator import EmulatorThread

CONFIGMAPS = "/api/v1/namespaces/default/configmaps"
JOBS = "/apis/batch/v1/namespaces/default/jobs"
PODS = "/api/v1/namespaces/default/pods"
# Long enough that "not yet collected" is observable over HTTP on a loaded machine.
SLOW_GC_SECONDS = 1.0


def owned_by(*owners: dict[str, Any], block: bool = False) -> list[dict[str, Any]]:
    refs = [{"apiVersion": owner["apiVersion"], "kind": owner["kind"],
             "name": owner["metadata"]["name"], "uid": owner["metadata"]["uid"]}
            for owner in owners]
    if block:
        for ref in refs:
            ref["blockOwnerDeletion"] = True
    return refs


def eventually(check: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "the garbage collector did not act in time"
        time.sleep(0.02)


def gone(http: RawApi, path: str) -> Callable[[], bool]:
    return lambda: http.get(path).status_code == 404


@pytest.fixture
def slow_gc(cluster: EmulatorThread) -> None:
    """A garbage collector that waits a whole second, so tests can see the window."""
    cluster.call(lambda emulator: setattr(emulator.garbage_collector, "delay_seconds", SLOW_GC_SECONDS))


def test_finalizers_keep_the_object_until_removed(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a", "finalizers": ["example.com/cleanup"]}})
    deleting = http.delete(f"{CONFIGMAPS}/a")
    assert deleting.status_code == 200
    assert deleting.json()["metadata"]["deletionTimestamp"]
    still_there = http.get(f"{CONFIGMAPS}/a")
    assert still_there.status_code == 200
    assert still_there.json()["metadata"]["deletionTimestamp"]
    http.patch(f"{CONFIGMAPS}/a", {"metadata": {"finalizers": None}})
    assert http.get(f"{CONFIGMAPS}/a").status_code == 404


def test_dependents_outlive_the_delete_call_then_go(http: RawApi, slow_gc: None) -> None:
    """Background propagation (the default): the owner is gone when DELETE returns, its
    dependents are still there, and the collector removes them (recursively) later."""
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    job = http.post(JOBS, {"metadata": {"name": "job", "ownerReferences": owned_by(owner)},
                           "spec": JOB_SPEC}).json()
    http.post(PODS, {"metadata": {"name": "pod", "ownerReferences": owned_by(job)}, "spec": POD_SPEC})
    http.post(CONFIGMAPS, {"metadata": {"name": "unrelated"}})
    assert http.delete(f"{CONFIGMAPS}/owner").status_code == 200
    assert http.get(f"{CONFIGMAPS}/owner").status_code == 404
    assert http.get(f"{JOBS}/job").status_code == 200, "collected inside the DELETE call"
    eventually(gone(http, f"{JOBS}/job"))
    eventually(gone(http, f"{PODS}/pod"))
    assert http.get(f"{CONFIGMAPS}/unrelated").status_code == 200


def test_a_new_owner_with_the_old_name_does_not_keep_old_dependents(http: RawApi,
                                                                    slow_gc: None) -> None:
    """Owners are identified by uid: re-creating the owner under the same name while the old
    dependent still exists neither adopts nor saves it (the stale-child race)."""
    old = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(JOBS, {"metadata": {"name": "job", "ownerReferences": owned_by(old)}, "spec": JOB_SPEC})
    http.delete(f"{CONFIGMAPS}/owner")
    new = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    assert new["metadata"]["uid"] != old["metadata"]["uid"]
    stale = http.get(f"{JOBS}/job").json()
    assert stale["metadata"]["ownerReferences"][0]["uid"] == old["metadata"]["uid"]
    eventually(gone(http, f"{JOBS}/job"))
    assert http.get(f"{CONFIGMAPS}/owner").json()["metadata"]["uid"] == new["metadata"]["uid"]


def test_dependent_with_a_finalizer_is_marked_not_removed(http: RawApi) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "finalizers": ["x/y"],
                                        "ownerReferences": owned_by(owner)}})
    http.delete(f"{CONFIGMAPS}/owner")
    eventually(lambda: bool(http.get(f"{CONFIGMAPS}/dep").json()["metadata"].get("deletionTimestamp")))
    assert http.get(f"{CONFIGMAPS}/dep").json()["metadata"]["finalizers"] == ["x/y"]


def test_dependent_with_another_live_owner_survives(http: RawApi) -> None:
    first = http.post(CONFIGMAPS, {"metadata": {"name": "first"}}).json()
    second = http.post(CONFIGMAPS, {"metadata": {"name": "second"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "ownerReferences": owned_by(first, second)}})
    http.delete(f"{CONFIGMAPS}/first")

    def only_second_left() -> bool:
        refs = http.get(f"{CONFIGMAPS}/dep").json()["metadata"]["ownerReferences"]
        return [ref["name"] for ref in refs] == ["second"]

    eventually(only_second_left)
    assert http.get(f"{CONFIGMAPS}/dep").status_code == 200


def test_orphan_propagation_keeps_dependents(http: RawApi, slow_gc: None) -> None:
    """Orphan: the owner waits with the `orphan` finalizer until the collector has removed
    the references to it from its dependents."""
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "ownerReferences": owned_by(owner)}})
    deleting = http.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Orphan"}).json()
    assert deleting["metadata"]["finalizers"] == ["orphan"]
    assert deleting["metadata"]["deletionTimestamp"]
    eventually(gone(http, f"{CONFIGMAPS}/owner"))
    dependent = http.get(f"{CONFIGMAPS}/dep")
    assert dependent.status_code == 200
    assert "ownerReferences" not in dependent.json()["metadata"]


def test_orphan_policy_from_the_query_parameter(http: RawApi) -> None:
    """kubectl delete --cascade=orphan sends the policy as a query parameter."""
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "ownerReferences": owned_by(owner)}})
    response = http.session.delete(http.base_url + f"{CONFIGMAPS}/owner",
                                   params={"propagationPolicy": "Orphan"}, timeout=10)
    assert response.json()["metadata"]["finalizers"] == ["orphan"]
    eventually(gone(http, f"{CONFIGMAPS}/owner"))
    dependent = http.get(f"{CONFIGMAPS}/dep")
    assert dependent.status_code == 200
    assert "ownerReferences" not in dependent.json()["metadata"]


def test_foreground_deletion_waits_for_blocking_dependents(http: RawApi, slow_gc: None) -> None:
    """Foreground: the owner stays (deletionTimestamp, `foregroundDeletion` finalizer) until
    its dependents with blockOwnerDeletion are gone; a finalizer on one holds the owner."""
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "held", "finalizers": ["example.com/hold"],
                                        "ownerReferences": owned_by(owner, block=True)}})
    http.post(CONFIGMAPS, {"metadata": {"name": "free", "ownerReferences": owned_by(owner, block=True)}})
    deleting = http.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Foreground"}).json()
    assert deleting["metadata"]["finalizers"] == ["foregroundDeletion"]
    eventually(gone(http, f"{CONFIGMAPS}/free"))
    held = http.get(f"{CONFIGMAPS}/held").json()
    assert held["metadata"]["deletionTimestamp"]
    time.sleep(SLOW_GC_SECONDS * 1.5)
    assert http.get(f"{CONFIGMAPS}/owner").status_code == 200, "released before its dependents"
    http.patch(f"{CONFIGMAPS}/held", {"metadata": {"finalizers": None}})
    eventually(gone(http, f"{CONFIGMAPS}/owner"))


def test_foreground_deletion_does_not_wait_for_non_blocking_dependents(http: RawApi) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner"}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "held", "finalizers": ["example.com/hold"],
                                        "ownerReferences": owned_by(owner)}})
    http.delete(f"{CONFIGMAPS}/owner", {"propagationPolicy": "Foreground"})
    eventually(gone(http, f"{CONFIGMAPS}/owner"))
    assert http.get(f"{CONFIGMAPS}/held").json()["metadata"]["deletionTimestamp"]


def test_batch_v1_jobs_orphan_their_pods_by_default(http: RawApi) -> None:
    """A Job deleted without a policy keeps its Pods (batch/v1's DefaultGarbageCollectionPolicy
    is OrphanDependents); with Background they go."""
    for name, options in (("kept", None), ("cascaded", {"propagationPolicy": "Background"})):
        job = http.post(JOBS, {"metadata": {"name": name}, "spec": JOB_SPEC}).json()
        http.post(PODS, {"metadata": {"name": f"{name}-pod", "ownerReferences": owned_by(job)},
                         "spec": POD_SPEC})
        http.delete(f"{JOBS}/{name}", options)
        eventually(gone(http, f"{JOBS}/{name}"))
    eventually(gone(http, f"{PODS}/cascaded-pod"))
    kept = http.get(f"{PODS}/kept-pod")
    assert kept.status_code == 200
    assert "ownerReferences" not in kept.json()["metadata"]


def test_a_dependent_of_an_absent_owner_is_collected(http: RawApi) -> None:
    """An ownerReference to a uid that does not exist is dangling: the collector deletes the
    object even though its owner was never deleted while it existed."""
    ghost = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "ghost", "uid": "no-such-uid"}}
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "ownerReferences": owned_by(ghost)}})
    eventually(gone(http, f"{CONFIGMAPS}/dep"))


def test_owner_released_by_finalizer_removal_collects_dependents(http: RawApi) -> None:
    owner = http.post(CONFIGMAPS, {"metadata": {"name": "owner", "finalizers": ["x/y"]}}).json()
    http.post(CONFIGMAPS, {"metadata": {"name": "dep", "ownerReferences": owned_by(owner)}})
    http.delete(f"{CONFIGMAPS}/owner")
    time.sleep(0.5)
    assert http.get(f"{CONFIGMAPS}/dep").status_code == 200
    http.patch(f"{CONFIGMAPS}/owner", {"metadata": {"finalizers": []}})
    eventually(gone(http, f"{CONFIGMAPS}/dep"))


def test_unknown_propagation_policy_is_rejected(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    response = http.delete(f"{CONFIGMAPS}/a", {"propagationPolicy": "Sometimes"})
    assert response.status_code == 422
    assert "Unsupported value" in response.json()["message"]
    assert http.get(f"{CONFIGMAPS}/a").status_code == 200


def test_delete_preconditions(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a"}})
    response = http.delete(f"{CONFIGMAPS}/a", {"preconditions": {"uid": "other"}})
    assert response.status_code == 409


def test_delete_collection_with_selector(http: RawApi) -> None:
    http.post(CONFIGMAPS, {"metadata": {"name": "a", "labels": {"app": "x"}}})
    http.post(CONFIGMAPS, {"metadata": {"name": "b"}})
    response = http.session.delete(http.base_url + CONFIGMAPS,
                                   params={"labelSelector": "app=x"}, timeout=10)
    assert response.status_code == 200
    assert [item["metadata"]["name"] for item in http.get(CONFIGMAPS).json()["items"]] == ["b"]


def test_kubectl_delete_returns_before_the_children_are_collected(
        http: RawApi, slow_gc: None, kubeconfig: pathlib.Path, tmp_path: pathlib.Path) -> None:
    """`kubectl delete` (cascade=background) returns once the owner is gone; the child is
    still there and the collector removes it later. --cascade=orphan keeps it."""
    def kubectl(*args: str) -> str:
        done = subprocess.run([shutil.which("kubectl") or "kubectl", "--kubeconfig", str(kubeconfig),
                               *args], capture_output=True, text=True, timeout=60,
                              env={**os.environ, "HOME": str(tmp_path)})
        assert done.returncode == 0, done.stderr
        return done.stdout

    for name in ("cascaded", "orphaning"):
        owner = http.post(CONFIGMAPS, {"metadata": {"name": name}}).json()
        job = {"metadata": {"name": f"{name}-job", "ownerReferences": owned_by(owner)}, "spec": JOB_SPEC}
        assert http.post(JOBS, job).status_code == 201
    assert "deleted" in kubectl("delete", "configmap", "cascaded")
    assert http.get(f"{JOBS}/cascaded-job").status_code == 200
    eventually(gone(http, f"{JOBS}/cascaded-job"))

    assert "deleted" in kubectl("delete", "configmap", "orphaning", "--cascade=orphan")
    assert http.get(f"{CONFIGMAPS}/orphaning").status_code == 404  # kubectl waited for it
    job = http.get(f"{JOBS}/orphaning-job")
    assert job.status_code == 200 and "ownerReferences" not in job.json()["metadata"]
