"""Hand-off on the local cluster: examples/serving/finetunejob.yaml, applied as a user would
(only its namespace, output claim and MLflow address changed), leaves a KServe manifest next
to the model, TensorBoard event files, the resolved base model commit in status, and an
MLflow run on a real `mlflow server`."""

from __future__ import annotations

import yaml
from kubetune.local.volumes import WorkDir

from tests.handoff.kserve import create_strictly, install_kserve_crds
from tests.handoff.mlflow_server import mlflow_server


def test_serving_example_hands_off_to_kserve_and_mlflow(api, cluster, repo_root, tmp_path):
    doc = yaml.safe_load((repo_root / "examples" / "serving" / "finetunejob.yaml").read_text())
    doc["metadata"]["namespace"] = "team-a"
    doc["spec"]["output"]["uri"] = "pvc://models/feedback-router-serving"
    with mlflow_server(tmp_path) as tracking_uri:
        doc["spec"]["tracking"]["mlflow"]["uri"] = tracking_uri
        api.create(doc)
        status = api.wait_status("FinetuneJob", "feedback-router-serving", lambda s: s.get(
            "phase") in ("Succeeded", "Failed"), timeout=400)
        assert status["phase"] == "Succeeded", status.get("failure")
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=tracking_uri)
        [run] = client.search_runs(
            [client.get_experiment_by_name("feedback-router").experiment_id])
        assert run.info.status == "FINISHED"
        assert run.data.tags["kubetune.io/job"] == "team-a/feedback-router-serving"
        assert "README.md" in {a.path for a in client.list_artifacts(run.info.run_id)}

    result = status["result"]
    # The commit of the MiniLM snapshot the local cluster's hub cache holds, as resolved.
    repo = cluster.hf_home / "hub" / "models--sentence-transformers--all-MiniLM-L6-v2"
    assert result["baseModelRevision"] == (repo / "refs" / "main").read_text().strip()
    assert result["servingUri"] == "pvc://models/feedback-router-serving/serving.yaml"

    folder = WorkDir(cluster.workdir).pvc("team-a", "models") / "feedback-router-serving"
    manifest = yaml.safe_load((folder / "serving.yaml").read_text())
    assert manifest["kind"] == "InferenceService"
    assert manifest["spec"]["predictor"]["model"]["storageUri"] == result["modelUri"].rstrip("/")
    assert list((folder / "tensorboard").glob("events.out.tfevents.*"))
    install_kserve_crds(cluster.url)
    created = create_strictly(cluster.url, manifest)
    assert created.status_code == 201, created.text
