"""What a pod sees when it runs locally: env from the API, $(VAR), volumes, claims, peers."""

from __future__ import annotations

import base64
import json
import pathlib

from .helpers import JOBS, RestApi, condition, job_manifest, wait_until

NS = "/api/v1/namespaces/default"
PRINTS_ARGS_AND_ENV = """
import json, os, pathlib, sys
names = ['TOKEN', 'FROM_SECRET_REF', 'GREETING', 'POD_IP', 'POD_NAME', 'DATA_DIR']
report = {'args': sys.argv[1:], 'env': {n: os.environ.get(n) for n in names}}
pathlib.Path(os.environ['REPORT']).write_text(json.dumps(report))
"""


def _report(api: RestApi, job: str) -> dict:
    """The report the pod wrote to its termination-message file."""
    wait_until(lambda: condition(api.job(job), "Complete"), message=f"{job} Complete")
    [pod] = api.pods_of(job)
    return json.loads(pod["status"]["containerStatuses"][0]["state"]["terminated"]["message"])


def test_env_from_secrets_config_maps_downward_api_and_var_expansion(api: RestApi) -> None:
    api.create(f"{NS}/secrets", {"metadata": {"name": "creds"}, "data": {
        "token": base64.b64encode(b"s3cret").decode(), "FROM_SECRET_REF": base64.b64encode(b"yes").decode()}})
    api.create(f"{NS}/configmaps", {"metadata": {"name": "settings"}, "data": {"greeting": "hello"}})
    env = [
        {"name": "REPORT", "value": "/dev/termination-log"},
        {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}},
        {"name": "GREETING", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "greeting"}}},
        {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "DATA_DIR", "value": "/data/$(GREETING)"},
    ]
    api.create(JOBS, job_manifest(
        "envs", PRINTS_ARGS_AND_ENV, env=env,
        container={"envFrom": [{"secretRef": {"name": "creds"}}],
                   "args": ["--greeting=$(GREETING)", "$$(GREETING)", "$(UNDEFINED)"]}))
    report = _report(api, "envs")
    [pod] = api.pods_of("envs")
    assert report["env"] == {
        "TOKEN": "s3cret", "FROM_SECRET_REF": "yes", "GREETING": "hello",
        "POD_IP": pod["status"]["podIP"], "POD_NAME": pod["metadata"]["name"],
        "DATA_DIR": "/data/hello",
    }
    assert report["args"] == ["--greeting=hello", "$(GREETING)", "$(UNDEFINED)"]


def test_missing_secret_keeps_the_pod_waiting_until_it_exists(api: RestApi) -> None:
    env = [{"name": "REPORT", "value": "/dev/termination-log"},
           {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "later", "key": "token"}}}]
    api.create(JOBS, job_manifest("waits", PRINTS_ARGS_AND_ENV, env=env))

    def waiting() -> dict | None:
        pods = api.pods_of("waits")
        statuses = pods[0]["status"].get("containerStatuses") if pods else None
        return statuses and statuses[0]["state"].get("waiting")

    state = wait_until(waiting, message="CreateContainerConfigError")
    assert state == {"reason": "CreateContainerConfigError", "message": 'secret "later" not found'}
    assert api.pods_of("waits")[0]["status"]["phase"] == "Pending"
    api.create(f"{NS}/secrets", {"metadata": {"name": "later"}, "data": {
        "token": base64.b64encode(b"now").decode()}})
    assert _report(api, "waits")["env"]["TOKEN"] == "now"


def test_claims_are_provisioned_as_folders_and_missing_ones_keep_pods_pending(
        api: RestApi, workdir: pathlib.Path) -> None:
    code = "import pathlib, sys; pathlib.Path(sys.argv[1]).write_text('saved')"
    api.create(JOBS, job_manifest(
        "saver", code,
        pod={"volumes": [{"name": "out", "persistentVolumeClaim": {"claimName": "results"}}]},
        container={"volumeMounts": [{"name": "out", "mountPath": "/mnt/pvc/results"}],
                   "args": ["/mnt/pvc/results/model.txt"]}))

    def scheduled_condition() -> dict | None:
        pods = api.pods_of("saver")
        conditions = pods[0]["status"].get("conditions", []) if pods else []
        return next((c for c in conditions if c["type"] == "PodScheduled"), None)

    unscheduled = wait_until(scheduled_condition, message="PodScheduled condition")
    assert (unscheduled["status"], unscheduled["reason"]) == ("False", "Unschedulable")
    assert unscheduled["message"] == 'persistentvolumeclaim "results" not found'

    api.create(f"{NS}/persistentvolumeclaims", {"metadata": {"name": "results"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}})
    wait_until(lambda: condition(api.job("saver"), "Complete"), message="saver Complete")
    assert (workdir / "pvcs/default/results/model.txt").read_text() == "saved"
    claim = api.get(f"{NS}/persistentvolumeclaims/results")
    assert claim["status"]["phase"] == "Bound"


PEER = """
import os, socket, sys
index, host = int(os.environ['JOB_COMPLETION_INDEX']), sys.argv[1]
if index == 0:
    server = socket.create_server((os.environ['POD_IP'], 29500))
    connection, _ = server.accept()
    connection.sendall(b'hello from rank 0')
    connection.close()
else:
    for _ in range(200):
        try:
            with socket.create_connection((host, 29500), timeout=1) as connection:
                message = connection.recv(100).decode()
                break
        except OSError:
            import time; time.sleep(0.05)
    open(os.environ['REPORT'], 'w').write(message)
"""


def test_indexed_job_pods_reach_index_zero_by_its_service_host_name(api: RestApi) -> None:
    api.create(JOBS, job_manifest(
        "ddp", PEER, completionMode="Indexed", completions=2, parallelism=2,
        env=[{"name": "REPORT", "value": "/dev/termination-log"},
             {"name": "POD_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}}],
        pod={"subdomain": "ddp"}, container={"args": ["ddp-0.ddp"]}))
    wait_until(lambda: condition(api.job("ddp"), "Complete"), message="ddp Complete")
    job = api.job("ddp")
    assert job["status"]["completedIndexes"] == "0-1"
    pods = {p["metadata"]["labels"]["batch.kubernetes.io/job-completion-index"]: p
            for p in api.pods_of("ddp")}
    assert pods["1"]["metadata"]["name"].startswith("ddp-1-")
    assert pods["0"]["spec"]["hostname"] == "ddp-0"
    assert pods["0"]["status"]["podIP"] != pods["1"]["status"]["podIP"]
    message = pods["1"]["status"]["containerStatuses"][0]["state"]["terminated"]["message"]
    assert message == "hello from rank 0"
