"""The real operator (kopf, in a thread) against the API emulator over HTTP.

Tests act as a user (the `kubernetes` client creates and changes FinetuneJobs) and as the
Job controller and kubelet (they create Pods and patch Job/Pod status), then wait for what
the operator writes back.

The emulator enforces RBAC: the operator runs as the Helm chart's ServiceAccount with the
ClusterRole the chart renders (`operator_rbac`, which a test may override), while the
tests use the admin kubeconfig.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from kubetune.emulator import ApiServerEmulator, EmulatorThread
from kubetune.local.chart import (
    OperatorRbac,
    find_chart_dir,
    install_operator_rbac,
    operator_rbac,
    render_chart,
)
from kubetune.operator.kube import Kube
from kubetune.operator.metrics import Metrics
from kubetune.operator.runner import OperatorThread
from kubetune.operator.settings import Settings

from .cluster import ClusterApi, CountingKube, ProgressServer


@pytest.fixture(scope="session")
def chart_rbac() -> OperatorRbac:
    """The ServiceAccount, ClusterRole and binding of the chart, rendered once."""
    return operator_rbac(render_chart(find_chart_dir()))


@pytest.fixture
def operator_rbac_manifests(chart_rbac: OperatorRbac) -> OperatorRbac:
    """What the operator is granted; override to take a permission away."""
    return chart_rbac


@pytest.fixture
def cluster(repo_root: Path) -> Iterator[EmulatorThread]:
    with EmulatorThread(ApiServerEmulator(rbac=True), crds=repo_root / "crds") as running:
        yield running


@pytest.fixture
def kubeconfig(cluster: EmulatorThread, tmp_path: Path) -> Path:
    """The cluster admin's kubeconfig (the tests' own client)."""
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def operator_kubeconfig(cluster: EmulatorThread, kubeconfig: Path, tmp_path: Path,
                        operator_rbac_manifests: OperatorRbac, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The operator's kubeconfig: the chart's ServiceAccount, limited to its RBAC."""
    path = install_operator_rbac(cluster, kubeconfig, tmp_path / "operator.kubeconfig",
                                 operator_rbac_manifests)
    monkeypatch.setenv("KUBECONFIG", str(path))  # kopf logs in with it
    return path


@pytest.fixture
def api(kubeconfig: Path) -> Iterator[ClusterApi]:
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    cluster_api = ClusterApi(client)
    cluster_api.create_namespace()
    yield cluster_api
    client.close()


@pytest.fixture
def progress_server() -> Iterator[ProgressServer]:
    with ProgressServer() as server:
        yield server


@pytest.fixture
def operator_settings(progress_server: ProgressServer) -> Settings:
    return Settings(metrics_port=0, health_port=0, progress_interval_seconds=0.2,
                    progress_port=progress_server.port, trainer_image="kubetune/trainer:test")


@pytest.fixture
def fit_checker():
    """None: the operator's own fit check; tests override this fixture to force a verdict."""
    return None


class OperatorControl:
    """Start, stop and restart the operator, keeping its metrics for assertions."""

    def __init__(self, settings: Settings, kubeconfig: Path, fit_checker) -> None:
        self.settings, self.kubeconfig, self.fit_checker = settings, kubeconfig, fit_checker
        self.metrics = Metrics()
        self.kube: Kube | None = None
        """A client to use instead of a fresh one (e.g. one that counts its requests)."""
        self.thread: OperatorThread | None = None

    def start(self) -> OperatorControl:
        memo = {"kube": self.kube or Kube.connect(str(self.kubeconfig)), "metrics": self.metrics}
        if self.fit_checker is not None:
            memo["fit_checker"] = self.fit_checker
        self.thread = OperatorThread(copy.copy(self.settings), memo=memo).start()
        return self

    def stop(self) -> None:
        if self.thread:
            self.thread.stop()
            assert self.thread.error is None, self.thread.error
        self.thread = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def counting_kube(operator_kubeconfig: Path) -> CountingKube:
    """The operator's API client; `sent` counts its requests."""
    return CountingKube.connect(str(operator_kubeconfig))


@pytest.fixture
def operator(operator_settings: Settings, operator_kubeconfig: Path, api: ClusterApi,
             fit_checker, counting_kube: CountingKube) -> Iterator[OperatorControl]:
    control = OperatorControl(operator_settings, operator_kubeconfig, fit_checker)
    control.kube = counting_kube
    control.start()
    yield control
    control.stop()
