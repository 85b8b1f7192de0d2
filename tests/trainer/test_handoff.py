"""Hand-off through the trainer's CLI on CPU: the model card names the commit the hub cache
resolved, serving.yaml is a KServe manifest KServe's schema accepts, TensorBoard event files
sit next to the checkpoints, and a real MLflow server receives params, per-step metrics and
the model card."""

from __future__ import annotations

import json
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from kubetune.emulator import EmulatorThread

from tests.handoff.kserve import create_strictly, install_kserve_crds
from tests.handoff.mlflow_server import mlflow_server

from .helpers import make_config

COMMIT = "0123456789abcdef0123456789abcdef01234567"
REPO = "kubetune-test/tiny-llama"
STEPS, EVAL_EVERY = 6, 3


def hub_cache_with(model_dir, cache):
    """A Hugging Face hub cache holding `model_dir` as REPO's snapshot COMMIT, with refs/main
    pointing at it: what `huggingface_hub.snapshot_download` leaves behind."""
    repo = cache / f"models--{REPO.replace('/', '--')}"
    shutil.copytree(model_dir, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    return cache


def tensorboard_scalars(folder) -> dict[str, list[int]]:
    """tag -> steps, read from TensorBoard event files (TFRecord: length, crc, event, crc)."""
    from tensorboardX.proto import event_pb2

    steps: dict[str, list[int]] = {}
    for path in sorted(folder.glob("events.out.tfevents.*")):
        data = path.read_bytes()
        offset = 0
        while offset < len(data):
            (length,) = struct.unpack("<Q", data[offset:offset + 8])
            event = event_pb2.Event.FromString(data[offset + 12:offset + 12 + length])
            offset += 12 + length + 4
            for value in event.summary.value:
                if value.HasField("simple_value"):
                    steps.setdefault(value.tag, []).append(event.step)
    return steps


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    with mlflow_server(tmp_path_factory.mktemp("mlflow")) as url:
        yield url


@pytest.fixture
def run_from_hub_cache(tiny_lm, colour_data, tmp_path, monkeypatch, tracking_server):
    """A LoRA run of the tiny model read from a hub cache by repo id (no revision asked),
    with output.serving and spec.tracking.mlflow."""
    monkeypatch.setenv("HF_HUB_CACHE", str(hub_cache_with(tiny_lm, tmp_path / "hub")))
    output = tmp_path / "out"
    config = make_config(tiny_lm, f"file://{colour_data}", output,
                         hyperparameters={"maxSteps": STEPS, "evalEverySteps": EVAL_EVERY},
                         output={"mergeAdapter": False,
                                 "serving": {"kind": "LLMInferenceService", "gpus": 1,
                                             "gpuResourceName": "nvidia.com/gpu"}},
                         tracking={"mlflow": {"uri": tracking_server, "experiment": "handoff"}},
                         jobUid="uid-handoff-1")
    config["model"]["uri"] = f"hf://{REPO}"
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    # A subprocess, as in the pod: huggingface_hub reads HF_HUB_CACHE when it is imported.
    done = subprocess.run([sys.executable, "-m", "kubetune_trainer", "--config", str(path)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return output, json.loads((tmp_path / "termination-log").read_text())


@pytest.mark.slow
def test_handoff_artifacts_of_a_lora_run(run_from_hub_cache, tracking_server):
    output, summary = run_from_hub_cache

    # The model card and the result name the commit the cache resolved, not "main".
    card = (output / "README.md").read_text()
    assert f"| revision | `{COMMIT}` (requested: default) |" in card
    assert summary["result"]["baseModelRevision"] == COMMIT

    # serving.yaml: the adapter on the base model pinned to that commit, accepted by KServe's
    # schema; file:// is not readable by KServe, and the file says so.
    text = (output / "serving.yaml").read_text()
    manifest = yaml.safe_load(text)
    assert manifest["kind"] == "LLMInferenceService"
    assert manifest["spec"]["model"]["uri"] == f"hf://{REPO}:{COMMIT}"
    assert manifest["spec"]["model"]["lora"]["adapters"] == [
        {"name": "test-job", "uri": summary["result"]["adapterUri"].rstrip("/")}]
    assert "# NOTE: file://" in text and "KServe cannot read file://" in text
    assert summary["result"]["servingUri"].endswith("serving.yaml")
    with EmulatorThread() as cluster:
        install_kserve_crds(cluster.url)
        created = create_strictly(cluster.url, manifest)
        assert created.status_code == 201, created.text

    # TensorBoard: one point per step, the evaluations at their steps.
    scalars = tensorboard_scalars(output / "tensorboard")
    assert scalars["trainLoss"] == list(range(1, STEPS + 1))
    assert scalars["evalLoss"] == [EVAL_EVERY, STEPS]

    # MLflow: the run, its params, per-step metrics, the evaluations and the model card.
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=tracking_server)
    experiment = client.get_experiment_by_name("handoff")
    [run] = client.search_runs([experiment.experiment_id])
    assert run.info.run_name == "test-job" and run.info.status == "FINISHED"
    assert run.data.tags["kubetune.io/uid"] == "uid-handoff-1"
    assert run.data.params["hyperparameters.maxSteps"] == str(STEPS)
    assert run.data.params["method.lora.r"] == "8"
    assert run.data.params["model.revision"] == COMMIT
    train = client.get_metric_history(run.info.run_id, "trainLoss")
    assert sorted(m.step for m in train) == list(range(1, STEPS + 1))
    evals = client.get_metric_history(run.info.run_id, "evalLoss")
    assert sorted(m.step for m in evals) == [EVAL_EVERY, STEPS]
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"README.md", "serving.yaml", "data-report.json"} <= artifacts
    card_copy = client.download_artifacts(run.info.run_id, "README.md", str(output.parent))
    assert COMMIT in Path(card_copy).read_text()
