"""End to end: the product driven the way a user drives it.

A `LocalCluster` (API emulator, the operator, the local executor running real trainer
processes) and the `kubernetes` client only: tests apply manifests and wait for status,
never calling the operator's or the trainer's internals.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
from kubetune.local.cluster import LocalCluster

from tests.operator.cluster import ClusterApi
from tests.trainer.helpers import build_tiny_llama, build_tokenizer, colour_chats, write_jsonl

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="session")
def tiny_lm(tmp_path_factory) -> Path:
    """A 2-layer Llama with a word-level tokenizer, saved like a model on a volume."""
    folder = tmp_path_factory.mktemp("tiny-llama")
    build_tiny_llama(folder, len(build_tokenizer(folder)))
    return folder


@pytest.fixture(scope="session")
def chat_data(tmp_path_factory) -> Path:
    return write_jsonl(tmp_path_factory.mktemp("data") / "train.jsonl", colour_chats(400))


@pytest.fixture
def cluster(tmp_path: Path, repo_root: Path) -> Iterator[LocalCluster]:
    local = LocalCluster(
        tmp_path / "work", kubeconfig=tmp_path / "kubeconfig", hf_home=tmp_path / "hf",
        namespaces=["team-a"],
        pvcs={"team-a/kubetune-examples": repo_root / "examples", "team-a/models": None},
        # One intra-op thread per trainer: on two shared cores, more threads were slower.
        extra_pod_env={"OMP_NUM_THREADS": "1"},
        operator_settings={"progress_interval_seconds": 0.5},
        shutdown_grace_seconds=10,
        # As on a real cluster: the operator has only what the Helm chart grants it, and
        # OwnerReferencesPermissionEnforcement is on (the test client stays cluster admin).
        rbac=True)
    with local:
        yield local


@pytest.fixture
def api(cluster: LocalCluster) -> Iterator[ClusterApi]:
    client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
    yield ClusterApi(client)
    client.close()
