"""An API emulator with the local executor attached, for each test."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest
from kubetune.emulator import EmulatorThread
from kubetune.local.executor import ExecutorThread

from .helpers import RestApi


@pytest.fixture
def emulator() -> Iterator[EmulatorThread]:
    with EmulatorThread() as running:
        yield running


@pytest.fixture
def workdir(tmp_path: pathlib.Path) -> pathlib.Path:
    return tmp_path / "work"


@pytest.fixture
def executor(emulator: EmulatorThread, tmp_path: pathlib.Path,
             workdir: pathlib.Path) -> Iterator[ExecutorThread]:
    kubeconfig = emulator.write_kubeconfig(tmp_path / "kubeconfig")
    with ExecutorThread(kubeconfig, workdir, retry_seconds=0.2) as running:
        yield running


@pytest.fixture
def api(emulator: EmulatorThread, executor: ExecutorThread) -> RestApi:
    return RestApi(emulator.url)
