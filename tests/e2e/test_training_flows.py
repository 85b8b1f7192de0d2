"""FinetuneJobs through the local cluster: success, multi-node, bad data, deletion."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.operator.cluster import condition, wait_for

from .manifests import causal_lm_job

pytestmark = pytest.mark.e2e


def test_causal_lm_lora_succeeds_with_progress_and_result(api, cluster, tiny_lm, chat_data):
    api.create(causal_lm_job("chat", tiny_lm, chat_data, max_steps=60))
    seen = api.wait_status("FinetuneJob", "chat",
                           lambda s: s.get("phase") == "Running"
                           and (s.get("progress") or {}).get("step", 0) > 0, timeout=120)
    assert seen["progress"]["totalSteps"] == 60
    status = api.wait_status("FinetuneJob", "chat", lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=240)
    assert status["phase"] == "Succeeded", status.get("failure")
    result = status["result"]
    assert result["adapterUri"] == "pvc://models/chat/adapter"
    assert result["modelUri"] == "pvc://models/chat/merged"
    assert result["trainLoss"] < 3.0 and result["evalLoss"] is not None
    # Which kernels ran, through the termination message and the CRD's status schema.
    assert (result["fastPath"]["attention"], result["fastPath"]["packedAttention"]) == (
        "sdpa", "mask")
    claim = cluster.workdir / "pvcs" / "team-a" / "models" / "chat"
    assert (claim / "adapter" / "adapter_config.json").is_file()
    assert (claim / "merged" / "config.json").is_file()
    assert condition({"status": status}, "Succeeded")["reason"] == "Completed"


def test_two_cpu_nodes_rendezvous_and_finish(api, cluster, tiny_lm, chat_data):
    api.create(causal_lm_job("ddp", tiny_lm, chat_data, max_steps=12,
                             resources={"gpus": 0, "nodes": 2}))
    status = api.wait_status("FinetuneJob", "ddp", lambda s: s.get("phase") in (
        "Succeeded", "Failed"), timeout=300)
    assert status["phase"] == "Succeeded", status.get("failure")
    logs = sorted((cluster.workdir / "pods" / "team-a").glob("ddp-train-*/log"))
    assert len(logs) == 2
    text = "".join(log.read_text() for log in logs)
    # Each rank logs a digest of its trained weights: two ranks, one model.
    digests = dict(re.findall(r"weights: rank (\d) of 2 sha256 (\w+)", text))
    assert set(digests) == {"0", "1"}, text[-3000:]
    assert digests["0"] == digests["1"]


def test_bad_dataset_fails_at_once_naming_the_rows(api, cluster, tiny_lm, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "my parcel is late", "label": "delivery"\n'   # line 1: malformed
                   '{"text": "refund please"}\n'                          # line 2: no label
                   '{"text": "   ", "label": "billing"}\n'               # line 3: empty
                   'not json at all\n')                                  # line 4: malformed
    job = causal_lm_job("bad", tiny_lm, bad, dataset={"format": "classification"})
    job["spec"]["model"] = {"uri": "hf://sentence-transformers/all-MiniLM-L6-v2",
                            "task": "sequence-classification", "numLabels": 5}
    del job["spec"]["dataset"]["validation"]
    api.create(job)
    status = api.wait_condition("FinetuneJob", "bad", "Failed", "True", timeout=240)
    assert status["failure"]["reason"] == "InvalidDataset", status["failure"]
    message = status["failure"]["message"]
    assert "line 1" in message and "malformed" in message.lower(), message
    assert status["attempts"] == 1  # bad input is not retried (podFailurePolicy FailJob)
    assert api.raw_job("bad-train")["status"]["conditions"][-1]["reason"] == "PodFailurePolicy"


def test_deleting_a_running_job_stops_its_processes_and_children(api, cluster, tiny_lm,
                                                                 chat_data):
    api.create(causal_lm_job("doomed", tiny_lm, chat_data, max_steps=5000))
    api.wait_status("FinetuneJob", "doomed", lambda s: (s.get("progress") or {}).get("step", 0) > 0,
                    timeout=120)
    pids = _trainer_pids(cluster, "doomed-train")
    assert pids
    api.delete("FinetuneJob", "doomed")
    wait_for(lambda: api.jobs() == [], timeout=30, what="the Job removed")
    wait_for(lambda: not any(_alive(pid) for pid in pids), timeout=30, what="processes gone")
    names = [c.metadata.name for c in api.core.list_namespaced_config_map("team-a").items]
    assert "doomed-config" not in names


def _trainer_pids(cluster, job_name: str) -> list[int]:
    """Processes whose environment names a pod of this Job (the executor's children)."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
        except OSError:
            continue
        if f"POD_NAME={job_name}-".encode() in environ:
            pids.append(int(entry))
    return pids


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"  # a zombie has ended
