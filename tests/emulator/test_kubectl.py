"""kubectl against the emulator: get, apply (create and update), delete, for CRDs and CRs.

kubectl is on PATH on these machines; users will point it at the local cluster.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess

import pytest
import yaml
from emulator_helpers import WIDGET_CRD, RawApi

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
def kubectl(kubeconfig: pathlib.Path, tmp_path: pathlib.Path):
    def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(tmp_path)}  # keep kubectl's discovery cache private
        result = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], input=stdin,
                                capture_output=True, text=True, timeout=60, env=env)
        assert result.returncode == 0, result.stderr
        return result
    return run


def test_kubectl_get_namespaces(kubectl, http: RawApi) -> None:
    http.post("/api/v1/namespaces/team-a/configmaps", {"metadata": {"name": "c"}})
    lines = kubectl("get", "ns").stdout.splitlines()
    assert lines[0].split() == ["NAME", "AGE"]
    assert [line.split()[0] for line in lines[1:]] == ["default", "team-a"]


def test_kubectl_apply_get_delete_of_a_custom_resource(kubectl, http: RawApi) -> None:
    assert "created" in kubectl("apply", "-f", "-", stdin=yaml.safe_dump(WIDGET_CRD)).stdout
    manifest = {"apiVersion": "example.com/v1", "kind": "Widget",
                "metadata": {"name": "w1"}, "spec": {"size": 3}}
    assert "widget.example.com/w1 created" in kubectl(
        "apply", "-f", "-", stdin=yaml.safe_dump(manifest)).stdout

    table = kubectl("get", "widgets").stdout.splitlines()
    # As kube-apiserver: a CRD's printer columns replace the default Age column.
    assert table[0].split() == ["NAME", "SIZE"]
    assert table[1].split()[:2] == ["w1", "3"]
    assert "w1" in kubectl("get", "wd", "-A").stdout  # short name, all namespaces

    manifest["spec"]["size"] = 4
    assert "configured" in kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest)).stdout
    stored = http.get("/apis/example.com/v1/namespaces/default/widgets/w1").json()
    assert stored["spec"] == {"size": 4} and stored["metadata"]["generation"] == 2
    as_yaml = yaml.safe_load(kubectl("get", "widget", "w1", "-o", "yaml").stdout)
    assert as_yaml["spec"] == {"size": 4}

    assert "deleted" in kubectl("delete", "widget", "w1").stdout
    assert http.get("/apis/example.com/v1/namespaces/default/widgets/w1").status_code == 404


def test_kubectl_apply_of_a_builtin_uses_strategic_merge_patch(kubectl, http: RawApi) -> None:
    manifest = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "settings"},
                "data": {"a": "1", "b": "2"}}
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest))
    manifest["data"] = {"a": "1"}
    assert "configured" in kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest)).stdout
    stored = http.get("/api/v1/namespaces/default/configmaps/settings").json()
    assert stored["data"] == {"a": "1"}
    kubectl("delete", "-f", "-", stdin=yaml.safe_dump(manifest))
    assert http.get("/api/v1/namespaces/default/configmaps/settings").status_code == 404
