"""The progress endpoint the operator polls, and the termination message it reads at the end."""

from __future__ import annotations

import json
import urllib.request

from kubetune_trainer import termination
from kubetune_trainer.progress import Progress, ProgressServer


def test_progress_json_and_prometheus_metrics():
    progress = Progress()
    server = ProgressServer(progress, host="127.0.0.1", port=0).start()
    try:
        progress.update(step=12, totalSteps=40, epoch=0.3, trainLoss=1.25, evalLoss=1.5,
                        tokensPerSecond=4321.0, etaSeconds=56.0, learningRate=1e-4)
        host, port = server.address
        with urllib.request.urlopen(f"http://{host}:{port}/progress", timeout=5) as response:
            assert response.headers["Content-Type"] == "application/json"
            body = json.load(response)
        assert {k: body[k] for k in ("step", "totalSteps", "epoch", "trainLoss", "evalLoss",
                                     "tokensPerSecond", "etaSeconds")} == {
            "step": 12, "totalSteps": 40, "epoch": 0.3, "trainLoss": 1.25, "evalLoss": 1.5,
            "tokensPerSecond": 4321.0, "etaSeconds": 56.0}
        with urllib.request.urlopen(f"http://{host}:{port}/metrics", timeout=5) as response:
            metrics = response.read().decode()
        assert "kubetune_trainer_step 12.0" in metrics
        assert "kubetune_trainer_train_loss 1.25" in metrics
        assert "kubetune_trainer_tokens_per_second 4321.0" in metrics
        assert "kubetune_trainer_learning_rate 0.0001" in metrics
    finally:
        server.stop()


def test_progress_server_takes_host_and_port_from_env(monkeypatch):
    monkeypatch.setenv("POD_IP", "127.0.0.1")
    monkeypatch.setenv("KUBETUNE_PROGRESS_PORT", "0")
    server = ProgressServer(Progress())
    try:
        assert server.address[0] == "127.0.0.1" and server.address[1] > 0
    finally:
        server.stop()


def test_termination_message_stays_under_4_kib(tmp_path):
    summary = {
        "phase": "Failed", "reason": "InvalidDataset", "message": "x" * 10_000,
        "result": {"adapterUri": "s3://b/" + "a" * 3000, "trainLoss": 0.5, "extra": "y" * 2000},
        "step": 3, "totalSteps": 10,
        "data": {"dropped": {f"reason {i}": i for i in range(300)}},
    }
    path = tmp_path / "termination-log"
    termination.write(summary, str(path))
    text = path.read_text()
    assert len(text.encode()) < 4096
    parsed = json.loads(text)
    assert parsed["phase"] == "Failed" and parsed["reason"] == "InvalidDataset"
    assert parsed["step"] == 3


def test_small_summary_is_written_whole(tmp_path):
    summary = {"phase": "Succeeded", "reason": "Completed", "message": "trained 5 steps",
               "result": {"adapterUri": "file:///o/adapter", "trainLoss": 0.1}, "step": 5,
               "totalSteps": 5, "data": {"rowsIn": 10}}
    assert json.loads(termination.render(summary)) == summary
