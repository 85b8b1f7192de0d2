"""Run the operator: `kubetune operator`, or in-process for the local cluster and tests."""

from __future__ import annotations

import asyncio
import logging
import os
import random
import threading

import kopf
from prometheus_client import start_http_server

from .handlers import registry
from .metrics import Metrics
from .settings import Settings
from .webhooks import webhook_server, with_webhooks


async def run_operator(settings: Settings, *, memo: dict | None = None,
                       kopf_settings: kopf.OperatorSettings | None = None,
                       ready_flag: asyncio.Event | threading.Event | None = None,
                       stop_flag: asyncio.Event | threading.Event | None = None) -> None:
    """Run kopf with kubetune's handlers until stop_flag is set (or forever).

    `memo` may carry prepared objects (a Kube client, Metrics, a fit checker) for tests.
    """
    memo = dict(memo or {})
    memo.setdefault("settings", settings)
    metrics = memo.setdefault("metrics", Metrics())
    host = listen_host(os.environ.get("POD_IP"))
    if settings.metrics_port:
        start_http_server(settings.metrics_port, addr=host, registry=metrics.registry)
    url_host = f"[{host}]" if ":" in host else host
    liveness = f"http://{url_host}:{settings.health_port}/healthz" if settings.health_port else None
    handlers = registry
    if settings.webhook_port:
        kopf_settings = kopf_settings or kopf.OperatorSettings()
        kopf_settings.admission.server = webhook_server(settings)
        handlers = with_webhooks(registry)
    await kopf.operator(
        registry=handlers,
        clusterwide=not settings.watch_namespaces,
        namespaces=list(settings.watch_namespaces),
        standalone=not settings.peering_name,
        peering_name=settings.peering_name or None,
        # kopf pauses every replica when peers share a priority: give each its own.
        priority=random.randint(1, 2**31 - 1) if settings.peering_name else 0,
        liveness_endpoint=liveness,
        memo=kopf.Memo(memo),
        settings=kopf_settings,
        ready_flag=ready_flag,
        stop_flag=stop_flag,
    )


def listen_host(pod_ip: str | None) -> str:
    """The wildcard address of the pod's own family (POD_IP, from the downward API): the
    kubelet probes and Prometheus scrapes the pod's IP, an IPv6 one on an IPv6 or
    IPv6-primary dual-stack cluster, where a server on 0.0.0.0 never answers."""
    return "::" if pod_ip and ":" in pod_ip else "0.0.0.0"


def configure_logging(json_format: bool = False) -> None:
    """Plain or one-JSON-object-per-line logs (for log collectors)."""
    handler = logging.StreamHandler()
    if json_format:
        handler.setFormatter(_JsonFormatter())
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler], force=True)


class _JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        import json

        entry = {"time": self.formatTime(record), "level": record.levelname,
                 "logger": record.name, "message": record.getMessage()}
        for key in ("k8s_obj", "namespace", "name"):
            if hasattr(record, key):
                entry[key] = str(getattr(record, key))
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry)


def quick_kopf_settings() -> kopf.OperatorSettings:
    """kopf settings for the local cluster and tests: short back-offs, quick exit."""
    settings = kopf.OperatorSettings()
    # Short, but as many tries as kopf's default (9): a watcher whose request fails after
    # its last try stops the operator, and a 20% fault rate must not get that far.
    settings.networking.error_backoffs = [0.1, 0.2, 0.5, 1, 1, 2, 2, 5]
    settings.queueing.error_delays = [0.1, 0.5, 1]
    settings.background.instant_exit_timeout = 0.5
    settings.watching.server_timeout = 30
    return settings


class OperatorThread:
    """The operator in a background thread with its own event loop (local cluster, tests)."""

    def __init__(self, settings: Settings, *, memo: dict | None = None,
                 kopf_settings: kopf.OperatorSettings | None = None) -> None:
        self.settings, self.memo = settings, dict(memo or {})
        self.kopf_settings = kopf_settings or quick_kopf_settings()
        self.ready, self.stopping = threading.Event(), threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="kubetune-operator", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(run_operator(self.settings, memo=self.memo, kopf_settings=self.kopf_settings,
                                     ready_flag=self.ready, stop_flag=self.stopping))
        except BaseException as error:  # reported to the starter, not lost in the thread
            self.error = error
            self.ready.set()

    def start(self, timeout: float = 30.0) -> OperatorThread:
        self._thread.start()
        if not self.ready.wait(timeout) or self.error:
            raise RuntimeError(f"the operator did not start: {self.error!r}")
        return self

    def stop(self, timeout: float = 30.0) -> None:
        self.stopping.set()
        self._thread.join(timeout)

    def __enter__(self) -> OperatorThread:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
