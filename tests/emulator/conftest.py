"""Fixtures: an emulator on a free port in a background thread, and clients pointed at it.

Tests talk to it over real HTTP, with the `kubernetes` client (as the operator does) or with
`requests` where the raw response (status code, Status body, watch lines) is the point.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import kubernetes
import pytest
import requests
from emulator_helpers import WIDGET_CRD, RawApi
from kubetune.emulator import EmulatorThread


@pytest.fixture
def cluster() -> Iterator[EmulatorThread]:
    with EmulatorThread() as running:
        yield running


@pytest.fixture
def kubeconfig(cluster: EmulatorThread, tmp_path: pathlib.Path) -> pathlib.Path:
    return cluster.write_kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def api_client(kubeconfig: pathlib.Path) -> Iterator[kubernetes.client.ApiClient]:
    client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
    yield client
    client.close()


@pytest.fixture
def core(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CoreV1Api:
    return kubernetes.client.CoreV1Api(api_client)


@pytest.fixture
def custom(api_client: kubernetes.client.ApiClient) -> kubernetes.client.CustomObjectsApi:
    return kubernetes.client.CustomObjectsApi(api_client)


@pytest.fixture
def http(cluster: EmulatorThread) -> Iterator[RawApi]:
    with requests.Session() as session:
        yield RawApi(cluster.url, session)


@pytest.fixture
def widgets(http: RawApi) -> RawApi:
    """The emulator with the Widget CRD created through the API, as kubectl would."""
    response = http.post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", WIDGET_CRD)
    assert response.status_code == 201, response.text
    return http
