"""A real MLflow tracking server for the tests: `mlflow server` (the `mlflow` package's own),
SQLite backend and a local artifact folder, on a free loopback port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

MLFLOW = Path(sys.executable).parent / "mlflow"
START_TIMEOUT = 180  # seconds; about 30 s at load 7 on 2 cores (migrations, uvicorn)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def mlflow_server(folder: Path):
    port = free_port()
    log = open(folder / "mlflow-server.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [str(MLFLOW), "server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
         "--backend-store-uri", f"sqlite:///{folder / 'mlflow.db'}",
         "--artifacts-destination", str(folder / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, "MLFLOW_ENABLE_TELEMETRY": "false"})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            assert process.poll() is None, (folder / "mlflow-server.log").read_text()[-2000:]
            try:
                if requests.get(f"{url}/health", timeout=10).ok:
                    break
            except (requests.ConnectionError, requests.Timeout):
                pass
            assert time.monotonic() < deadline, "mlflow server did not start"
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)  # its uvicorn workers are in its group
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
