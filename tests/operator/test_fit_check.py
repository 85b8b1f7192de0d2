"""The fit check at admission: status.plan, DoesNotFit blocks the Job unless skipped."""

from __future__ import annotations

import copy
import json

import pytest

from .cluster import FINETUNE_JOB, condition, wait_for

# Llama-3-8B's published config: 8,030,261,248 parameters.
LLAMA_3_8B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336,
              "num_hidden_layers": 32, "num_attention_heads": 32, "num_key_value_heads": 8,
              "vocab_size": 128256, "max_position_embeddings": 8192,
              "tie_word_embeddings": False, "rms_norm_eps": 1e-5}


@pytest.fixture
def llama_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps(LLAMA_3_8B))
    return tmp_path


def job(model_dir, method: str, gpu_memory: str, annotations: dict | None = None) -> dict:
    doc = copy.deepcopy(FINETUNE_JOB)
    doc["spec"]["model"] = {"uri": f"file://{model_dir}"}
    doc["spec"]["method"] = {"type": method}
    doc["spec"]["resources"] = {"gpus": 1, "gpuMemory": gpu_memory}
    doc["spec"]["hyperparameters"] = {"batchSize": 2, "maxSeqLength": 2048}
    if annotations:
        doc["metadata"]["annotations"] = annotations
    return doc


def test_full_finetune_of_8b_on_80gi_does_not_fit_and_no_job_is_created(api, operator, llama_dir):
    api.create(job(llama_dir, "full", "80Gi"))
    status = api.wait_condition("FinetuneJob", "router", "ResourcesFit", "False", "DoesNotFit")
    message = condition({"status": status}, "ResourcesFit")["message"]
    assert "more than the 80 GiB per GPU" in message and "would fit: method lora" in message
    assert status["plan"]["parameters"] == 8_030_261_248
    assert status["plan"]["gpuMemoryBytes"] == 80 * 2**30
    assert status["phase"] == "Failed" and status["failure"]["reason"] == "DoesNotFit"
    assert api.jobs() == []


def test_lora_of_8b_fits_and_runs(api, operator, llama_dir):
    api.create(job(llama_dir, "lora", "80Gi"))
    wait_for(lambda: api.raw_job("router-train"))
    status = api.wait_condition("FinetuneJob", "router", "ResourcesFit", "True", "Fits")
    assert status["plan"]["trainableParameters"] < status["plan"]["parameters"] / 100
    assert 0 < status["plan"]["estimatedGpuMemoryBytes"] < 80 * 2**30


def test_skip_annotation_runs_a_job_that_does_not_fit(api, operator, llama_dir):
    api.create(job(llama_dir, "full", "80Gi", {"kubetune.io/skip-fit-check": "true"}))
    wait_for(lambda: api.raw_job("router-train"))
    status = api.wait_condition("FinetuneJob", "router", "ResourcesFit", "False", "DoesNotFit")
    assert "running anyway" in condition({"status": status}, "ResourcesFit")["message"]
    assert status["phase"] == "Pending"


def test_unreadable_config_is_unknown_and_the_job_still_runs(api, operator, tmp_path):
    api.create(job(tmp_path / "missing", "lora", "80Gi"))
    wait_for(lambda: api.raw_job("router-train"))
    status = api.wait_condition("FinetuneJob", "router", "ResourcesFit", "Unknown", "Unknown")
    assert "config.json unavailable" in condition({"status": status}, "ResourcesFit")["message"]


def test_cpu_jobs_are_checked_against_the_pods_memory(llama_dir):
    from kubetune.api import FinetuneJobSpec
    from kubetune.operator.fit import fit_of
    from kubetune.operator.settings import Settings
    from kubetune.planner import ConfigSource

    doc = job(llama_dir, "lora", "80Gi")["spec"]
    doc["resources"] = {"gpus": 0, "memory": "16Gi"}
    fit = fit_of(FinetuneJobSpec.model_validate(doc), Settings(), ConfigSource())
    assert fit.fits is False and "of the pod's memory (gpus: 0 runs on CPU)" in fit.message
    assert "per GPU" not in fit.message


def test_adding_the_skip_annotation_later_starts_the_job(api, operator, llama_dir):
    api.create(job(llama_dir, "full", "80Gi"))
    api.wait_condition("FinetuneJob", "router", "ResourcesFit", "False", "DoesNotFit")
    api.custom.patch_namespaced_custom_object(
        "kubetune.io", "v1alpha1", "team-a", "finetunejobs", "router",
        {"metadata": {"annotations": {"kubetune.io/skip-fit-check": "true"}}})
    wait_for(lambda: api.raw_job("router-train"), what="the Job, once the check is skipped")
    status = api.wait_status("FinetuneJob", "router", lambda s: s.get("phase") == "Pending")
    assert condition({"status": status}, "Failed")["status"] == "False"


def test_auto_shards_a_full_finetune_that_fits_only_with_fsdp(api, operator, llama_dir):
    """8 x 80Gi GPUs: a replica of full Llama-3-8B does not fit, a shard does; the Job runs
    and the trainer is told fsdp."""
    doc = job(llama_dir, "full", "80Gi")
    doc["spec"]["resources"]["gpus"] = 8
    api.create(doc)
    wait_for(lambda: api.raw_job("router-train"))
    status = api.wait_condition("FinetuneJob", "router", "ResourcesFit", "True", "Fits")
    assert status["plan"]["strategy"] == "fsdp"
    config = json.loads(api.config_map("router-config")["data"]["config.json"])
    assert config["resources"]["strategy"] == "fsdp"
