"""Live progress for the operator: GET /progress (JSON) and GET /metrics (Prometheus).

Rank 0 serves both on each of the pod's addresses ($POD_IPS, a comma-separated list from the
downward API's status.podIPs, else $POD_IP, else 127.0.0.1) and $KUBETUNE_PROGRESS_PORT
(default 8000), from daemon threads; the training loop only updates numbers under a lock.
Each address gets a server of its own family, so IPv4, IPv6 and dual-stack pods all answer
(the standard library's HTTPServer is IPv4-only unless told otherwise).
"""

from __future__ import annotations

import json
import logging
import os
import socket
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
    warnings: list | None = None
    """Training-health warnings so far: [{"reason": "Overfitting", "message"}] (health.py)."""
    plateau: dict | None = None
    """The eval metric's plateau, when on one (health.plateau's numbers)."""


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
    """The HTTP endpoint on every address of the pod; `port` 0 picks a free port (tests)."""

    def __init__(self, progress: Progress, host: str | None = None, port: int | None = None):
        if port is None:
            port = int(os.environ.get("KUBETUNE_PROGRESS_PORT") or DEFAULT_PORT)
        self.progress = progress
        self._servers = [_FamilyServer((address, port), _handler_for(progress))
                         for address in ([host] if host else pod_addresses())]
        self._threads = [threading.Thread(target=server.serve_forever, daemon=True,
                                          name="progress-server") for server in self._servers]

    @property
    def address(self) -> tuple[str, int]:
        """The first (primary) address and its port."""
        return self.addresses[0]

    @property
    def addresses(self) -> list[tuple[str, int]]:
        return [server.server_address[:2] for server in self._servers]

    def start(self) -> ProgressServer:
        for thread in self._threads:
            thread.start()
        for host, port in self.addresses:
            log.info("progress: serving %s/progress and /metrics", base_url(host, port))
        return self

    def stop(self) -> None:
        for server, thread in zip(self._servers, self._threads, strict=True):
            if thread.is_alive():  # shutdown() waits forever for a loop that never ran
                server.shutdown()
            server.server_close()


def pod_addresses() -> list[str]:
    """The addresses to serve on: all of the pod's IPs (dual-stack pods have one per family)."""
    ips = [ip.strip() for ip in (os.environ.get("POD_IPS") or "").split(",") if ip.strip()]
    return list(dict.fromkeys(ips)) or [os.environ.get("POD_IP") or "127.0.0.1"]


def base_url(host: str, port: int) -> str:
    """http://host:port, with an IPv6 address in brackets (RFC 3986)."""
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


class _FamilyServer(ThreadingHTTPServer):
    """A ThreadingHTTPServer of the address's own family (AF_INET6 for an IPv6 address)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], handler) -> None:
        infos = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)
        self.address_family = infos[0][0]
        super().__init__(address, handler)


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
