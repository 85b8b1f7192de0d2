"""Live progress for the operator: GET /progress (JSON) and GET /metrics (Prometheus).

Rank 0 serves both on $POD_IP:$KUBETUNE_PROGRESS_PORT (defaults 127.0.0.1:8000) from a daemon
thread; the training loop only updates numbers under a lock.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

log = logging.getLogger(__name__)
DEFAULT_PORT = 8000


@dataclass
class Snapshot:
    """What GET /progress returns; attribute names are the wire format (camelCase)."""

    step: int = 0
    totalSteps: int = 0
    epoch: float = 0.0
    trainLoss: float | None = None
    evalLoss: float | None = None
    evalAccuracy: float | None = None
    tokensPerSecond: float = 0.0
    etaSeconds: float | None = None
    learningRate: float = 0.0
    phase: str = "Starting"
    checkpoint: dict | None = None
    """The newest checkpoint: {"uri", "step", "time"}."""


class Progress:
    """Thread-safe progress numbers plus their Prometheus gauges."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._snapshot = Snapshot()
        self.registry = CollectorRegistry()
        gauge = lambda name, help: Gauge(name, help, registry=self.registry)  # noqa: E731
        self._gauges = {
            "step": gauge("kubetune_trainer_step", "Optimizer steps done"),
            "totalSteps": gauge("kubetune_trainer_total_steps", "Optimizer steps planned"),
            "epoch": gauge("kubetune_trainer_epoch", "Epochs done (fractional)"),
            "trainLoss": gauge("kubetune_trainer_train_loss", "Training loss of the last step"),
            "evalLoss": gauge("kubetune_trainer_eval_loss", "Loss on the validation set"),
            "evalAccuracy": gauge("kubetune_trainer_eval_accuracy",
                                  "Accuracy on the validation set (classification)"),
            "tokensPerSecond": gauge("kubetune_trainer_tokens_per_second",
                                     "Real (non-padding) tokens trained per second, all ranks"),
            "learningRate": gauge("kubetune_trainer_learning_rate", "Current learning rate"),
            "etaSeconds": gauge("kubetune_trainer_eta_seconds", "Estimated seconds to finish"),
        }

    def update(self, **values) -> None:
        with self._lock:
            for key, value in values.items():
                setattr(self._snapshot, key, value)
                if key in self._gauges and value is not None:
                    self._gauges[key].set(value)

    def snapshot(self) -> dict:
        with self._lock:
            return asdict(self._snapshot)


class ProgressServer:
    """The HTTP endpoint; `port` 0 picks a free port (tests)."""

    def __init__(self, progress: Progress, host: str | None = None, port: int | None = None):
        host = host or os.environ.get("POD_IP") or "127.0.0.1"
        if port is None:
            port = int(os.environ.get("KUBETUNE_PROGRESS_PORT") or DEFAULT_PORT)
        self.progress = progress
        self._server = ThreadingHTTPServer((host, port), _handler_for(progress))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True,
                                        name="progress-server")

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address[:2]

    def start(self) -> ProgressServer:
        self._thread.start()
        log.info("progress: serving http://%s:%d/progress and /metrics", *self.address)
        return self

    def stop(self) -> None:
        if self._thread.is_alive():  # shutdown() waits forever for a loop that never ran
            self._server.shutdown()
        self._server.server_close()


def _handler_for(progress: Progress):
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/progress":
                body = json.dumps(progress.snapshot()).encode()
                content_type = "application/json"
            elif path == "/metrics":
                body = generate_latest(progress.registry)
                content_type = CONTENT_TYPE_LATEST
            elif path == "/healthz":
                body, content_type = b"ok", "text/plain"
            else:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args) -> None:  # the operator polls often: stay quiet
            pass

    return Handler


class Throughput:
    """Tokens per second and ETA over a sliding window of recent steps."""

    def __init__(self, window: int = 20) -> None:
        self.window = window
        self._samples: list[tuple[float, int]] = []  # (time at end of step, tokens in it)
        self._start = time.monotonic()

    def add(self, tokens: int) -> None:
        self._samples.append((time.monotonic(), tokens))
        del self._samples[:-self.window - 1]

    def tokens_per_second(self) -> float:
        if len(self._samples) < 2:
            if self._samples:
                elapsed = self._samples[0][0] - self._start
                return self._samples[0][1] / elapsed if elapsed > 0 else 0.0
            return 0.0
        elapsed = self._samples[-1][0] - self._samples[0][0]
        tokens = sum(tokens for _, tokens in self._samples[1:])
        return tokens / elapsed if elapsed > 0 else 0.0

    def seconds_per_step(self) -> float | None:
        if len(self._samples) < 2:
            return None
        return (self._samples[-1][0] - self._samples[0][0]) / (len(self._samples) - 1)
