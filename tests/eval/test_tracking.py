"""An EvalJob with spec.tracking logs its results to a real MLflow server (`mlflow server`,
started by the test): each metric with its interval, baseline and delta, whether it passed,
and report.json."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.handoff.mlflow_server import mlflow_server

from .helpers import eval_config, write_config


@pytest.mark.slow
def test_evaluation_results_reach_mlflow(tiny_lm, completion_data, tmp_path):
    with mlflow_server(tmp_path) as url:
        config = eval_config(f"file://{tiny_lm}", f"file://{completion_data}", tmp_path / "out",
                             baseline={"uri": f"file://{tiny_lm}"},
                             thresholds={"perplexity": 1e9},
                             tracking={"mlflow": {"uri": url, "experiment": "evals"}})
        config_file = write_config(tmp_path / "config.json", config)
        log = tmp_path / "termination-log"
        env = {**os.environ, "KUBETUNE_TERMINATION_LOG": str(log), "HF_HUB_OFFLINE": "1"}
        done = subprocess.run([sys.executable, "-m", "kubetune_trainer.eval", "--config",
                               str(config_file)], env=env, capture_output=True, text=True,
                              timeout=300)
        assert done.returncode == 0, done.stderr[-3000:]
        message = json.loads(log.read_text())
        assert "warnings" not in message

        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=url)
        [run] = client.search_runs([client.get_experiment_by_name("evals").experiment_id])
        assert run.info.status == "FINISHED"
        assert run.data.tags["kubetune.io/kind"] == "EvalJob"
        assert run.data.tags["kubetune.io/passed"] == "true"
        by_name = {row["name"]: row for row in message["results"]}
        metrics = run.data.metrics
        assert metrics["perplexity"] == pytest.approx(by_name["perplexity"]["value"])
        assert metrics["perplexity.ciLow"] == pytest.approx(by_name["perplexity"]["ciLow"])
        assert metrics["loss.delta"] == pytest.approx(0.0)  # the baseline is the same model
        assert "report.json" in {a.path for a in client.list_artifacts(run.info.run_id)}
