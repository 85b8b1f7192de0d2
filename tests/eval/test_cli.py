"""`python -m kubetune_trainer.eval` as the pod runs it: exit code, termination message, report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from kubetune_trainer.eval import cli

from .helpers import eval_config, write_config


def test_the_cli_writes_the_termination_message_and_the_report(tiny_lm, completion_data, tmp_path):
    config = eval_config(f"file://{tiny_lm}", f"file://{completion_data}", tmp_path / "out",
                         baseline={"uri": f"file://{tiny_lm}"},
                         thresholds={"perplexity": 1e9, "exactMatch": 0.99})
    config_file = write_config(tmp_path / "config.json", config)
    log = tmp_path / "termination-log"
    env = {**os.environ, "KUBETUNE_TERMINATION_LOG": str(log), "HF_HUB_OFFLINE": "1"}
    done = subprocess.run([sys.executable, "-m", "kubetune_trainer.eval", "--config",
                           str(config_file)], env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]

    message = json.loads(log.read_text())
    assert message["phase"] == "Succeeded"
    assert message["reason"] == "Completed"
    assert message["samples"] == 12
    assert [row["name"] for row in message["results"]] == [
        "loss", "perplexity", "exactMatch", "tokenF1", "rougeL"]
    by_name = {row["name"]: row for row in message["results"]}
    assert by_name["perplexity"]["passed"] is True
    assert by_name["exactMatch"]["passed"] is False
    assert message["passed"] is False  # a failed threshold is a result, not a failed run
    assert by_name["loss"]["delta"] == 0.0  # the baseline is the same model
    assert message["reportUri"] == f"file://{tmp_path / 'out' / 'report.json'}"

    report = json.loads((tmp_path / "out" / "report.json").read_text())
    assert report["kind"] == "EvalReport"
    assert report["results"] == message["results"]
    assert len(report["generation"]["lowestScoring"]) == 12
    lines = (tmp_path / "out" / "predictions.jsonl").read_text().splitlines()
    assert len(lines) == 12
    record = json.loads(lines[0])
    assert {"prompt", "reference", "prediction", "tokenF1", "baselines"} <= record.keys()
    assert {"prediction", "tokenF1", "loss"} <= record["baselines"]["model"].keys()


def test_a_missing_model_exits_2_with_reason_model_not_found(completion_data, tmp_path):
    config_file = write_config(tmp_path / "config.json", eval_config(
        f"file://{tmp_path / 'no-such-model'}", f"file://{completion_data}"))
    assert cli.main(["--config", str(config_file)]) == 2
    message = json.loads((tmp_path / "termination-log").read_text())
    assert (message["phase"], message["reason"]) == ("Failed", "ModelNotFound")
    assert "no-such-model" in message["message"]


def test_a_missing_dataset_exits_2_with_reason_invalid_dataset(tiny_lm, tmp_path):
    config_file = write_config(tmp_path / "config.json", eval_config(
        f"file://{tiny_lm}", f"file://{tmp_path / 'missing.jsonl'}"))
    assert cli.main(["--config", str(config_file)]) == 2
    message = json.loads((tmp_path / "termination-log").read_text())
    assert message["reason"] == "InvalidDataset"
    assert "missing.jsonl" in message["message"]


def test_an_invalid_config_exits_2_and_names_the_field(tmp_path):
    config = eval_config("file:///models/x", "file:///data/x.jsonl", average="median")
    config_file = write_config(tmp_path / "config.json", config)
    assert cli.main(["--config", str(config_file)]) == 2
    message = json.loads((tmp_path / "termination-log").read_text())
    assert message["reason"] == "InvalidConfig"
    assert message["message"].startswith("average:")


def test_an_unexpected_error_is_retryable(tiny_lm, completion_data, tmp_path, monkeypatch):
    from kubetune_trainer.eval import recipe

    def broken(config):
        raise RuntimeError("CUDA error: an illegal memory access was encountered")

    monkeypatch.setattr(recipe, "evaluate", broken)
    config_file = write_config(tmp_path / "config.json", eval_config(
        f"file://{tiny_lm}", f"file://{completion_data}"))
    assert cli.main(["--config", str(config_file)]) == 1
    message = json.loads((tmp_path / "termination-log").read_text())
    assert message["reason"] == "EvaluatorError"
    assert "illegal memory access" in message["message"]
