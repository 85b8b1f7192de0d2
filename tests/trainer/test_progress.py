"""The progress endpoint the operator polls, and the termination message it reads at the end."""

from __future__ import annotations

import json
import urllib.request

from kubetune_trainer import termination
from kubetune_trainer.progress import Progress, ProgressServer, base_url


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


def _step_at(host: str, port: int) -> int:
    with urllib.request.urlopen(f"{base_url(host, port)}/progress", timeout=5) as response:
        return json.load(response)["step"]


def test_progress_server_on_an_ipv6_pod_ip(monkeypatch):
    """An IPv6-only pod: POD_IP is an IPv6 address (status.podIP on an IPv6 cluster,
    https://kubernetes.io/docs/concepts/services-networking/dual-stack/); the server binds it
    with an AF_INET6 socket and the URL brackets it."""
    monkeypatch.setenv("POD_IP", "::1")
    monkeypatch.delenv("POD_IPS", raising=False)
    monkeypatch.setenv("KUBETUNE_PROGRESS_PORT", "0")
    progress = Progress()
    server = ProgressServer(progress).start()
    try:
        progress.update(step=7)
        host, port = server.address
        assert host == "::1"
        assert _step_at(host, port) == 7
    finally:
        server.stop()


def test_progress_server_on_every_address_of_a_dual_stack_pod(monkeypatch):
    """A dual-stack pod has one IP per family in status.podIPs (the downward API gives them
    comma-separated); whichever family the operator uses, the trainer answers."""
    monkeypatch.setenv("POD_IP", "127.0.0.1")
    monkeypatch.setenv("POD_IPS", "127.0.0.1,::1")
    monkeypatch.setenv("KUBETUNE_PROGRESS_PORT", "0")
    progress = Progress()
    server = ProgressServer(progress).start()
    try:
        progress.update(step=3)
        assert [host for host, _ in server.addresses] == ["127.0.0.1", "::1"]
        assert [_step_at(host, port) for host, port in server.addresses] == [3, 3]
    finally:
        server.stop()


def test_base_url_brackets_ipv6_only():
    assert base_url("10.1.2.3", 8000) == "http://10.1.2.3:8000"
    assert base_url("fd00::5", 8000) == "http://[fd00::5]:8000"


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
