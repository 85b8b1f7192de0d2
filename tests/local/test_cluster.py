"""The local cluster as a whole: in-process (`LocalCluster`) and as `kubetune local up`."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys

import kubernetes
import pytest
import yaml
from kubetune.local import LocalCluster
from kubetune.local.cli import READY_PREFIX

from .helpers import RestApi, condition, job_manifest, wait_until


def test_claim_given_to_the_cluster_is_prefilled_from_a_folder(tmp_path: pathlib.Path) -> None:
    source = tmp_path / "examples"
    (source / "data").mkdir(parents=True)
    (source / "data" / "train.jsonl").write_text('{"text": "hi"}\n')
    code = "import pathlib, sys; print(pathlib.Path(sys.argv[1]).read_text(), end='')"
    with LocalCluster(tmp_path / "work", kubeconfig=tmp_path / "kubeconfig", operator=False,
                      pvcs={"team/examples": source}, extra_pod_env={"FROM_CLUSTER": "1"}) as cluster:
        api = RestApi(cluster.url)
        claim = {"name": "ex", "persistentVolumeClaim": {"claimName": "examples"}}
        job = job_manifest(
            "reader", code, pod={"volumes": [claim]},
            container={"volumeMounts": [{"name": "ex", "mountPath": "/mnt/pvc/examples"}],
                       "args": ["/mnt/pvc/examples/data/train.jsonl"]})
        job["metadata"]["namespace"] = "team"
        api.create("/apis/batch/v1/namespaces/team/jobs", job)
        wait_until(lambda: condition(api.get("/apis/batch/v1/namespaces/team/jobs/reader"), "Complete"),
                   message="reader Complete")
    [log] = (tmp_path / "work" / "pods" / "team").glob("reader-*/log")
    assert log.read_text() == '{"text": "hi"}\n'


@pytest.fixture
def local_up_options() -> list[str]:
    return []


@pytest.fixture
def local_up(tmp_path: pathlib.Path, local_up_options: list[str]):
    command = [sys.executable, "-m", "kubetune.local", "up", "--kubeconfig", str(tmp_path / "kc"),
               "--workdir", str(tmp_path / "work"), "--hf-home", str(tmp_path / "hf"),
               *local_up_options]
    env = {k: v for k, v in os.environ.items() if k != "KUBECONFIG"}
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    yield process
    if process.poll() is None:
        process.kill()
        process.wait()


def test_local_up_serves_kubectl_and_stops_on_sigterm(local_up: subprocess.Popen,
                                                      tmp_path: pathlib.Path) -> None:
    line = local_up.stdout.readline()  # blocks until ready (or the process died)
    assert line.startswith(READY_PREFIX), (line, local_up.stderr.read() if local_up.poll() else "")
    kubeconfig = line.removeprefix(READY_PREFIX).strip()
    assert kubeconfig == str(tmp_path / "kc")
    done = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "ns", "-o", "name"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert "namespace/default" in done.stdout.split()
    crds = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, "get", "crd", "-o", "name"],
                          capture_output=True, text=True, timeout=30)
    assert "customresourcedefinition.apiextensions.k8s.io/finetunejobs.kubetune.io" in crds.stdout

    local_up.send_signal(signal.SIGTERM)
    assert local_up.wait(timeout=30) == 0  # stops cleanly (exit 0), not killed


@pytest.mark.parametrize("local_up_options", [["--rbac"]])
def test_local_up_rbac_limits_the_operator_to_the_charts_role(local_up: subprocess.Popen,
                                                              tmp_path: pathlib.Path) -> None:
    """`--rbac`: the operator's kubeconfig is the chart's ServiceAccount, which gets what the
    chart's ClusterRole grants and nothing else (a 403 with kube-apiserver's message, see
    https://kubernetes.io/docs/reference/access-authn-authz/rbac/); kubectl stays admin and
    can act as the operator with impersonation (--as), as on a cluster."""
    line = local_up.stdout.readline()
    assert line.startswith(READY_PREFIX), (line, local_up.stderr.read() if local_up.poll() else "")
    admin = line.removeprefix(READY_PREFIX).strip()
    account = "system:serviceaccount:kubetune-system:kubetune"

    def kubectl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["kubectl", "--kubeconfig", admin, *args],
                              capture_output=True, text=True, timeout=30)

    assert kubectl("get", "secrets", "-n", "default").returncode == 0
    assert kubectl("get", "finetunejobs", "-A", f"--as={account}").returncode == 0
    denied = kubectl("get", "secrets", "-n", "default", f"--as={account}")
    assert denied.returncode != 0
    assert (f'secrets is forbidden: User "{account}" cannot list resource "secrets" in API group ""'
            ' in the namespace "default"') in denied.stderr
    # The operator's own kubeconfig carries that identity.
    client = kubernetes.config.new_client_from_config(
        config_file=str(tmp_path / "work" / "operator.kubeconfig"))
    with pytest.raises(kubernetes.client.ApiException) as error:
        kubernetes.client.CoreV1Api(client).list_namespaced_secret("default")
    client.close()
    assert error.value.status == 403 and account in error.value.body
    local_up.send_signal(signal.SIGTERM)
    assert local_up.wait(timeout=30) == 0


@pytest.mark.parametrize("local_up_options", [["--rbac"]])
def test_local_up_rbac_refuses_a_job_naming_a_secret_its_user_may_not_get(
        local_up: subprocess.Popen, tmp_path: pathlib.Path) -> None:
    """The chart's ValidatingAdmissionPolicies are installed too (README, "Security model"): a
    user who may create FinetuneJobs but not get the Secret a job names is refused, the admin
    is not, as kube-apiserver's policy authorizer decides for the requesting user."""
    line = local_up.stdout.readline()
    assert line.startswith(READY_PREFIX), (line, local_up.stderr.read() if local_up.poll() else "")
    admin = line.removeprefix(READY_PREFIX).strip()

    def kubectl(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run(["kubectl", "--kubeconfig", admin, *args], input=stdin,
                              capture_output=True, text=True, timeout=30)

    rbac = yaml.safe_dump_all([
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": "jobs", "namespace": "default"},
         "rules": [{"apiGroups": ["kubetune.io"], "resources": ["finetunejobs"],
                    "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": "alice-jobs", "namespace": "default"},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "jobs"},
         "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": "alice"}]},
    ])
    created = kubectl("create", "-f", "-", stdin=rbac)
    assert created.returncode == 0, created.stderr
    job = yaml.safe_dump({
        "apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob",
        "metadata": {"name": "sneaky", "namespace": "default"},
        "spec": {"model": {"uri": "hf://org/model", "secretRef": {"name": "db-password"}},
                 "dataset": {"uri": "s3://data/train.jsonl"}, "resources": {"gpus": 0},
                 "output": {"uri": "s3://out/"}}})
    refused = kubectl("create", "-f", "-", "--as=alice", stdin=job)
    assert refused.returncode != 0
    assert "spec.model.secretRef: the requester needs permission to get the Secret" in refused.stderr
    assert kubectl("create", "-f", "-", stdin=job).returncode == 0
    local_up.send_signal(signal.SIGTERM)
    assert local_up.wait(timeout=30) == 0
