"""Suspend/resume and an operator restart in the middle of training lose nothing."""

from __future__ import annotations

import os
import re
import signal

import pytest

from tests.operator.cluster import wait_for

from .manifests import causal_lm_job

pytestmark = pytest.mark.e2e


def _step(api, name: str) -> int:
    return (api.status("FinetuneJob", name).get("progress") or {}).get("step", 0)


def test_suspend_then_resume_continues_from_the_checkpoint(api, cluster, tiny_lm, chat_data):
    api.create(causal_lm_job("pausable", tiny_lm, chat_data, max_steps=3000,
                             checkpointing={"everySteps": 0, "keep": 1}))
    wait_for(lambda: _step(api, "pausable") >= 20, timeout=150, what="some steps")
    api.patch_spec("FinetuneJob", "pausable", {"suspend": True})
    api.wait_condition("FinetuneJob", "pausable", "Suspended", "True", timeout=60)
    checkpoints = cluster.workdir / "pvcs" / "team-a" / "models" / "pausable" / "checkpoints"
    saved = wait_for(lambda: sorted(checkpoints.glob("checkpoint-*")), timeout=30,
                     what="a checkpoint written on SIGTERM")
    saved_step = int(saved[-1].name.split("-")[-1])
    assert saved_step >= 20

    api.patch_spec("FinetuneJob", "pausable", {"suspend": False})
    api.wait_condition("FinetuneJob", "pausable", "Suspended", "False", "Resumed", timeout=60)
    # The new pod resumes at the checkpoint's step, not at zero.
    log = wait_for(lambda: _resumed_log(cluster, saved_step), timeout=150,
                   what="the resumed trainer's log")
    assert f"step {saved_step}" in log
    wait_for(lambda: _step(api, "pausable") > saved_step, timeout=120, what="steps after resume")
    api.delete("FinetuneJob", "pausable")


def _resumed_log(cluster, step: int) -> str | None:
    for log in (cluster.workdir / "pods" / "team-a").glob("pausable-train-*/log"):
        text = log.read_text(errors="replace")
        if "resume: continuing from" in text:
            return text[text.index("resume: continuing from"):][:200]
    return None


def test_operator_restart_mid_training_loses_nothing(api, cluster, tiny_lm, chat_data):
    api.create(causal_lm_job("steady", tiny_lm, chat_data, max_steps=150))
    wait_for(lambda: _step(api, "steady") > 0, timeout=120, what="training under way")
    job_uid = api.raw_job("steady-train")["metadata"]["uid"]
    cluster.restart_operator()
    status = api.wait_status("FinetuneJob", "steady", lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=240)
    assert status["phase"] == "Succeeded", status.get("failure")
    assert api.raw_job("steady-train")["metadata"]["uid"] == job_uid  # not created twice
    assert status["attempts"] == 1
    assert status["result"]["adapterUri"] == "pvc://models/steady/adapter"


def test_a_lost_rank_restarts_both_ranks_from_the_checkpoint(api, cluster, tiny_lm, chat_data):
    """issue 11 section 6: with static rendezvous one dead rank stops the gang; the next
    attempt's Job starts both ranks again, they resume from the checkpoint and finish."""
    api.create(causal_lm_job("gang", tiny_lm, chat_data, max_steps=40,
                             resources={"gpus": 0, "nodes": 2},
                             checkpointing={"everySteps": 10, "keep": 2}))
    wait_for(lambda: (api.status("FinetuneJob", "gang").get("checkpoint") or {}).get("step", 0)
             >= 10, timeout=300, what="a checkpoint")
    first = api.raw_job("gang-train")["metadata"]["uid"]
    rank1 = next(p for p in api.core.list_namespaced_pod("team-a").items
                 if p.metadata.labels.get("batch.kubernetes.io/job-completion-index") == "1"
                 and p.metadata.owner_references[0].uid == first and p.status.phase == "Running")
    pid = int(rank1.status.container_statuses[0].container_id.removeprefix("local://"))
    os.killpg(pid, signal.SIGKILL)  # the rank's node is gone: all its processes die at once

    status = api.wait_status("FinetuneJob", "gang", lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=420)
    assert status["phase"] == "Succeeded", status.get("failure")
    assert status["attempts"] == 2
    job = api.raw_job("gang-train")
    assert job["metadata"]["uid"] != first
    assert job["metadata"]["annotations"]["kubetune.io/attempt"] == "2"
    logs = [log.read_text(errors="replace")
            for log in (cluster.workdir / "pods" / "team-a").glob("gang-train-*/log")]
    resumed = [text for text in logs if "resume: continuing from" in text]
    assert resumed, "no rank of the second attempt resumed from the checkpoint"
    step = int(re.search(r"resume: continuing from \S+ at step (\d+)", resumed[0]).group(1))
    assert step >= 10
    # Both ranks of the second attempt trained one model.
    digests = dict(re.findall(r"weights: rank (\d) of 2 sha256 (\w+)", "".join(resumed + logs)))
    assert set(digests) == {"0", "1"}
