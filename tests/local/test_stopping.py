"""Stopping pods the kubelet's way: suspend, resume, Job deletion, Pod deletion."""

from __future__ import annotations

import pathlib

from .helpers import JOBS, PODS, RestApi, condition, job_manifest, wait_until

# Marks its start, then waits; on SIGTERM it writes a marker (as the trainer checkpoints).
PATIENT = """
import pathlib, signal, sys, time
folder = pathlib.Path(sys.argv[1])
def on_term(*_):
    (folder / 'sigterm').write_text('got it')
    sys.exit(0)
signal.signal(signal.SIGTERM, on_term)
starts = folder / 'starts'
starts.write_text(starts.read_text() + 'x' if starts.exists() else 'x')
time.sleep(60)
"""


def _patient_job(name: str, folder: pathlib.Path) -> dict:
    return job_manifest(name, PATIENT, container={"args": [str(folder)]})


def _running(api: RestApi, job: str) -> list[dict]:
    return [p for p in api.pods_of(job) if p["status"]["phase"] == "Running"]


def test_suspend_terminates_pods_without_failures_and_resume_starts_new_ones(
        api: RestApi, tmp_path: pathlib.Path) -> None:
    api.create(JOBS, _patient_job("pausable", tmp_path))
    wait_until(lambda: (tmp_path / "starts").exists(), message="the process to start")
    [first] = wait_until(lambda: _running(api, "pausable"), message="a running pod")

    api.patch(f"{JOBS}/pausable", {"spec": {"suspend": True}})
    wait_until(lambda: (tmp_path / "sigterm").exists(), message="SIGTERM")
    wait_until(lambda: not api.pods_of("pausable"), message="the pods to be removed")
    job = wait_until(lambda: condition(api.job("pausable"), "Suspended") and api.job("pausable"))
    assert not job["status"].get("failed") and not job["status"].get("active")

    api.patch(f"{JOBS}/pausable", {"spec": {"suspend": False}})
    [second] = wait_until(lambda: _running(api, "pausable"), message="a new running pod")
    assert second["metadata"]["name"] != first["metadata"]["name"]
    wait_until(lambda: (tmp_path / "starts").read_text() == "xx", message="a second start")
    suspended = next(c for c in api.job("pausable")["status"]["conditions"] if c["type"] == "Suspended")
    assert (suspended["status"], suspended["reason"]) == ("False", "JobResumed")


def test_deleting_the_job_stops_its_process(api: RestApi, tmp_path: pathlib.Path) -> None:
    api.create(JOBS, _patient_job("doomed", tmp_path))
    wait_until(lambda: (tmp_path / "starts").exists(), message="the process to start")
    # As `kubectl delete job` does: batch/v1 Jobs orphan their Pods unless asked otherwise.
    api.delete(f"{JOBS}/doomed", propagation_policy="Background")
    wait_until(lambda: (tmp_path / "sigterm").exists(), message="SIGTERM")
    assert not api.pods_of("doomed")


def test_a_process_ignoring_sigterm_is_killed_after_the_grace_period(
        api: RestApi, tmp_path: pathlib.Path) -> None:
    stubborn = ("import pathlib, signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN);"
                "pathlib.Path(sys.argv[1]).write_text(str(__import__('os').getpid())); time.sleep(60)")
    api.create(JOBS, job_manifest("stubborn", stubborn, pod={"terminationGracePeriodSeconds": 1},
                                  container={"args": [str(tmp_path / "pid")]}))
    [pod] = wait_until(lambda: _running(api, "stubborn"), message="a running pod")
    pid = int(wait_until(lambda: (tmp_path / "pid").exists() and (tmp_path / "pid").read_text()))
    api.delete(f"{PODS}/{pod['metadata']['name']}")
    wait_until(lambda: not pathlib.Path(f"/proc/{pid}").exists()
               or "Z" in pathlib.Path(f"/proc/{pid}/stat").read_text().split()[2],
               timeout=5, message="the process to be killed")
    # A Job's pod deleted while it ran counts as failed, and the Job replaces it.
    wait_until(lambda: api.job("stubborn")["status"].get("failed") == 1, message="failed count")
    wait_until(lambda: _running(api, "stubborn"), message="a replacement pod")
