"""kubectl against the emulator: get, apply (create and update), delete, for CRDs and CRs.

kubectl is on PATH on these machines; users will point it at the local cluster.
"""

from __future__ import annotations

import os
import pathlib
import re
import shutil
import subprocess
import time

import pytest
import yaml
from emulator_helpers import WIDGET_CRD, RawApi

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


@pytest.fixture
def kubectl(kubeconfig: pathlib.Path, tmp_path: pathlib.Path):
    def run(*args: str, stdin: str | None = None, ok: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "HOME": str(tmp_path)}  # keep kubectl's discovery cache private
        result = subprocess.run([KUBECTL, "--kubeconfig", str(kubeconfig), *args], input=stdin,
                                capture_output=True, text=True, timeout=60, env=env)
        if ok:
            assert result.returncode == 0, result.stderr
        else:
            assert result.returncode != 0, result.stdout
        return result
    return run


def test_kubectl_get_namespaces(kubectl, http: RawApi) -> None:
    http.create_namespace("team-a")
    lines = kubectl("get", "ns").stdout.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "AGE"]
    # A new cluster has four namespaces (kube-apiserver's system namespaces controller).
    assert [line.split()[0] for line in lines[1:]] == [
        "default", "kube-node-lease", "kube-public", "kube-system", "team-a"]


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


# --- kubectl explain: OpenAPI v3 with the CRDs' schemas -------------------------------------

CRDS = pathlib.Path(__file__).resolve().parents[2] / "crds"


@pytest.fixture
def kubetune_crds(cluster) -> None:
    cluster.call(lambda emulator: emulator.install_crds_from(CRDS))


def test_kubectl_explain_prints_field_docs_from_the_crd_schema(kubectl, kubetune_crds) -> None:
    """kubectl 1.32 explains from OpenAPI v3 (/openapi/v3, then the group version's
    document), finding the kind by x-kubernetes-group-version-kind, as kube-apiserver
    publishes a CRD's schema (https://kubernetes.io/docs/tasks/extend-kubernetes/
    custom-resources/custom-resource-definitions/#publish-validation-schema-in-openapi)."""
    spec = kubectl("explain", "finetunejob.spec").stdout
    assert "KIND:       FinetuneJob" in spec and "VERSION:    v1alpha1" in spec
    assert "What to finetune, on what data, how, and on which GPUs." in spec
    assert "dataset\t<Object> -required-" in spec and "hyperparameters\t<Object>" in spec

    uri = kubectl("explain", "ftj.spec.model.uri").stdout
    assert "FIELD: uri <string>" in uri and "hf://ORG/NAME[@REVISION]" in uri

    evaljob = kubectl("explain", "evaljob").stdout
    assert "KIND:       EvalJob" in evaljob and "metadata\t<ObjectMeta>" in evaljob
    assert "Standard object's metadata." in evaljob  # the description every kind has

    labels = kubectl("explain", "evaljob.metadata.labels").stdout
    assert "FIELD: labels <map[string]string>" in labels


def test_openapi_v2_is_json_only(http: RawApi, kubetune_crds) -> None:
    """/openapi/v2 holds every CRD's definitions (Swagger 2.0). It is served as JSON; a
    protobuf-only request gets 406 Not Acceptable (kube-apiserver serves both: the
    emulator has no protobuf encoder), which client-go's `OpenAPISchema` reads as "not there"."""
    document = http.get("/openapi/v2").json()
    definition = document["definitions"]["io.kubetune.v1alpha1.FinetuneJob"]
    assert definition["x-kubernetes-group-version-kind"] == [
        {"group": "kubetune.io", "version": "v1alpha1", "kind": "FinetuneJob"}]
    assert "dataset" in definition["properties"]["spec"]["properties"]
    protobuf = http.session.get(http.base_url + "/openapi/v2", headers={
        "Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}, timeout=10)
    assert protobuf.status_code == 406


# --- server-side tables: kubernetes pkg/printers/internalversion/printers.go -----------------

def _pod(name: str, **status) -> dict:
    return {"metadata": {"name": name},
            "spec": {"containers": [{"name": "main", "image": "python:3.11"}]}, **status}


def test_kubectl_get_pods_shows_ready_status_restarts_age(kubectl, http: RawApi) -> None:
    """printPod: READY is ready/total containers, STATUS the phase unless a container's
    waiting or terminated reason says more (ContainerCreating, Completed, Error), RESTARTS
    the containers' restartCount."""
    pods = "/api/v1/namespaces/default/pods"
    for name in ("creating", "running", "done"):
        assert http.post(pods, _pod(name)).status_code == 201
    states = {
        "creating": ("Pending", {"waiting": {"reason": "ContainerCreating"}}, False, 0),
        "running": ("Running", {"running": {"startedAt": "2026-01-01T00:00:00Z"}}, True, 2),
        "done": ("Succeeded", {"terminated": {"exitCode": 0, "reason": "Completed"}}, False, 0),
    }
    for name, (phase, state, ready, restarts) in states.items():
        status = {"phase": phase, "podIP": "127.0.0.9", "podIPs": [{"ip": "127.0.0.9"}],
                  "containerStatuses": [{"name": "main", "state": state, "ready": ready,
                                         "restartCount": restarts, "image": "python:3.11",
                                         "imageID": ""}]}
        response = http.patch(f"{pods}/{name}/status", {"status": status})
        assert response.status_code == 200, response.text

    lines = [line.split() for line in kubectl("get", "pods").stdout.splitlines()]
    assert lines[0] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    rows = {row[0]: row[1:4] for row in lines[1:]}
    assert rows == {"creating": ["0/1", "ContainerCreating", "0"],
                    "done": ["0/1", "Completed", "0"], "running": ["1/1", "Running", "2"]}
    wide = kubectl("get", "pod", "running", "-o", "wide").stdout.splitlines()
    assert wide[0].split()[5:] == ["IP", "NODE", "NOMINATED", "NODE", "READINESS", "GATES"]
    assert wide[1].split()[5] == "127.0.0.9"


def test_kubectl_get_jobs_shows_status_completions_duration(kubectl, http: RawApi) -> None:
    """printJob (kubectl 1.32 columns): STATUS from the conditions (Running, Complete,
    Failed, Suspended), COMPLETIONS succeeded/completions, DURATION completionTime - startTime."""
    jobs = "/apis/batch/v1/namespaces/default/jobs"
    template = {"spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "python:3.11"}]}}
    for name in ("busy", "finished"):
        body = {"metadata": {"name": name}, "spec": {"completions": 2, "template": template}}
        assert http.post(jobs, body).status_code == 201
    http.patch(f"{jobs}/busy/status", {"status": {"startTime": "2026-01-01T00:00:00Z",
                                                  "succeeded": 1}})
    http.patch(f"{jobs}/finished/status", {"status": {
        "startTime": "2026-01-01T00:00:00Z", "completionTime": "2026-01-01T00:03:05Z",
        "succeeded": 2, "conditions": [{"type": "Complete", "status": "True"}]}})

    lines = [line.split() for line in kubectl("get", "jobs").stdout.splitlines()]
    assert lines[0] == ["NAME", "STATUS", "COMPLETIONS", "DURATION", "AGE"]
    rows = {row[0]: row[1:4] for row in lines[1:]}
    assert rows["finished"] == ["Complete", "2/2", "3m5s"]
    assert rows["busy"][:2] == ["Running", "1/2"]


def test_kubectl_get_events_and_namespaces(kubectl, http: RawApi) -> None:
    """printEvent: LAST SEEN TYPE REASON OBJECT MESSAGE (OBJECT is kind/name in lower
    case); printNamespace: NAME STATUS AGE."""
    event = {"metadata": {"name": "ftj.1"}, "type": "Warning", "reason": "InvalidSpec",
             "message": "spec.dataset: Field required ",
             "involvedObject": {"kind": "FinetuneJob", "name": "ftj", "namespace": "default"},
             "firstTimestamp": "2026-01-01T00:00:00Z", "lastTimestamp": "2026-01-01T00:00:00Z",
             "count": 3, "source": {"component": "kubetune"}}
    assert http.post("/api/v1/namespaces/default/events", event).status_code == 201
    lines = kubectl("get", "events").stdout.splitlines()
    assert lines[0].split() == ["LAST", "SEEN", "TYPE", "REASON", "OBJECT", "MESSAGE"]
    assert lines[1].split()[1:] == ["Warning", "InvalidSpec", "finetunejob/ftj", "spec.dataset:",
                                    "Field", "required"]
    wide = kubectl("get", "events", "-o", "wide").stdout.splitlines()
    assert "kubetune" in wide[1].split() and "3" in wide[1].split()

    namespaces = [line.split() for line in kubectl("get", "namespaces").stdout.splitlines()]
    assert namespaces[0] == ["NAME", "STATUS", "AGE"]
    assert namespaces[1][:2] == ["default", "Active"]


def test_kubectl_get_sort_by_a_field_outside_metadata(kubectl, http: RawApi) -> None:
    """`kubectl get events --sort-by=.lastTimestamp` asks for `includeObject=Object`: the
    Table's rows must then carry the whole object, not only its metadata, or kubectl finds no
    value to sort by and prints "No resources found". kube-apiserver's asTable
    (k8s.io/apiserver/pkg/endpoints/handlers/response.go) embeds the full object for
    `Object`, a PartialObjectMetadata for `Metadata` (the default) and nothing for `None`."""
    for name, stamp in (("late", "2026-01-01T00:00:09Z"), ("early", "2026-01-01T00:00:01Z")):
        event = {"metadata": {"name": name}, "type": "Normal", "reason": name,
                 "message": name,
                 "involvedObject": {"kind": "Pod", "name": "p", "namespace": "default"},
                 "firstTimestamp": stamp, "lastTimestamp": stamp, "count": 1}
        assert http.post("/api/v1/namespaces/default/events", event).status_code == 201
    lines = kubectl("get", "events", "--sort-by=.lastTimestamp").stdout.splitlines()
    assert [line.split()[2] for line in lines[1:]] == ["early", "late"]
    for include, kind in (("Object", "Event"), ("Metadata", "PartialObjectMetadata"),
                          ("", "PartialObjectMetadata")):
        query = f"?includeObject={include}" if include else ""
        rows = _table_rows(http, f"/api/v1/namespaces/default/events{query}")
        assert {row["object"]["kind"] for row in rows} == {kind}
    rows = _table_rows(http, "/api/v1/namespaces/default/events?includeObject=None")
    assert rows and all(row.get("object") is None for row in rows)


def _table_rows(http: RawApi, path: str) -> list[dict]:
    accept = "application/json;as=Table;v=v1;g=meta.k8s.io"
    response = http.session.get(http.base_url + path, headers={"Accept": accept}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()["rows"]


def test_kubectl_server_dry_run_stores_nothing(kubectl, kubetune_crds, http: RawApi) -> None:
    """`kubectl apply --dry-run=server` sends `?dryRun=All`: kube-apiserver validates, defaults
    and admits the object and answers with it, but stores nothing; any other dryRun value is
    a 400 (https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run;
    apiserver/pkg/endpoints/handlers/rest.go)."""
    manifest = (CRDS.parent / "examples" / "quickstart" / "finetunejob.yaml").read_text()
    shown = kubectl("apply", "--dry-run=server", "-o", "yaml", "-f", "-", stdin=manifest).stdout
    assert yaml.safe_load(shown)["spec"]["checkpointing"] == {"everySteps": 100, "keep": 1}
    assert "backoffLimit" in yaml.safe_load(shown)["spec"]  # a schema default, filled in
    jobs = "/apis/kubetune.io/v1alpha1/namespaces/default/finetunejobs"
    assert http.get(f"{jobs}/feedback-router").status_code == 404
    bad = manifest.replace("learningRate: 0.00005", "learningRate: -1")
    assert "greater than 0" in kubectl("apply", "--dry-run=server", "-f", "-", stdin=bad, ok=False).stderr

    kubectl("apply", "-f", "-", stdin=manifest)
    changed = manifest.replace("everySteps: 100", "everySteps: 7")
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=changed)
    kubectl("delete", "--dry-run=server", "finetunejob", "feedback-router")
    stored = http.get(f"{jobs}/feedback-router")
    assert stored.status_code == 200 and stored.json()["spec"]["checkpointing"]["everySteps"] == 100
    response = http.session.post(http.base_url + jobs + "?dryRun=Some", json={}, timeout=10)
    assert response.status_code == 400 and "dryRun" in response.json()["message"]


# --- kubectl wait and get -w ----------------------------------------------------------------

def _background(kubeconfig: pathlib.Path, home: pathlib.Path, *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([KUBECTL, "--kubeconfig", str(kubeconfig), *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "HOME": str(home)})


def test_kubectl_wait_for_a_condition(kubectl, http: RawApi, kubeconfig: pathlib.Path,
                                      tmp_path: pathlib.Path) -> None:
    """`kubectl wait --for=condition=Complete` lists, then watches the object by field
    selector until the condition is True (https://kubernetes.io/docs/reference/kubectl/
    generated/kubectl_wait/)."""
    jobs = "/apis/batch/v1/namespaces/default/jobs"
    template = {"spec": {"restartPolicy": "Never",
                         "containers": [{"name": "main", "image": "python:3.11"}]}}
    http.post(jobs, {"metadata": {"name": "w"}, "spec": {"template": template}})
    waiter = _background(kubeconfig, tmp_path, "wait", "--for=condition=Complete", "job/w",
                         "--timeout=30s")
    try:
        # The watch must be open before the change, or this tests only the initial list.
        time.sleep(1)
        assert waiter.poll() is None, waiter.communicate()
        http.patch(f"{jobs}/w/status", {"status": {"conditions": [
            {"type": "Complete", "status": "True"}]}})
        out, err = waiter.communicate(timeout=30)
    finally:
        waiter.kill()
    assert waiter.returncode == 0, err
    assert out.strip() == "job.batch/w condition met"


def test_the_readme_watch_commands_run(kubeconfig: pathlib.Path, tmp_path: pathlib.Path,
                                       kubetune_crds) -> None:
    """Each `kubectl get ... -w` the README tells users to run keeps watching. kubectl's
    watch builds with SingleResourceType() (k8s.io/kubectl/pkg/cmd/get/get.go), so a
    category that names two kinds (`kubectl get kubetune -w`) fails at once with "you may
    only specify a single resource type", on a real cluster as here."""
    readme = (CRDS.parent / "README.md").read_text()
    commands = re.findall(r"^kubectl (get [^#\n]*-w)\b", readme, re.MULTILINE)
    assert commands, "the README shows how to watch a job"
    for command in commands:
        watcher = _background(kubeconfig, tmp_path, *command.split())
        try:
            time.sleep(2)
            assert watcher.poll() is None, (command, watcher.communicate())
        finally:
            watcher.kill()
            watcher.communicate()


def test_kubectl_get_watch_prints_table_rows_as_objects_change(http: RawApi, kubeconfig: pathlib.Path,
                                                               tmp_path: pathlib.Path) -> None:
    """`kubectl get pods -w` watches with `Accept: ...;as=Table`: kube-apiserver sends each
    event's object as a one-row Table, so the rows keep the real columns."""
    pods = "/api/v1/namespaces/default/pods"
    http.post(pods, _pod("watched"))
    watcher = _background(kubeconfig, tmp_path, "get", "pods", "-w")
    try:
        assert watcher.stdout is not None
        header = watcher.stdout.readline().split()
        first = watcher.stdout.readline().split()
        http.patch(f"{pods}/watched/status", {"status": {"phase": "Running", "containerStatuses": [
            {"name": "main", "state": {"running": {}}, "ready": True, "restartCount": 0,
             "image": "python:3.11", "imageID": ""}]}})
        changed = watcher.stdout.readline().split()
    finally:
        watcher.kill()
        watcher.communicate()
    assert header == ["NAME", "READY", "STATUS", "RESTARTS", "AGE"]
    assert first[:3] == ["watched", "0/1", "Pending"]
    assert changed[:3] == ["watched", "1/1", "Running"]


# --- admission, as a user meets it through kubectl 1.32 (issue 12) ------------------------------

FINETUNE_JOB: dict = {
    "apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob", "metadata": {"name": "router"},
    "spec": {"model": {"uri": "hf://org/model"}, "dataset": {"uri": "pvc://data/train.jsonl"},
             "output": {"uri": "pvc://models/router"}, "resources": {"gpus": 0},
             "hyperparameters": {"learningRate": 0.001}},
}


def manifest(**spec_changes) -> str:
    doc = yaml.safe_load(yaml.safe_dump(FINETUNE_JOB))
    for key, value in spec_changes.items():
        doc["spec"][key] = value
    return yaml.safe_dump(doc)


@pytest.mark.parametrize(("spec_changes", "error"), [
    ({"hyperparameters": {"learningRate": -1}},
     'The FinetuneJob "router" is invalid: spec.hyperparameters.learningRate: Invalid value: -1:'
     " spec.hyperparameters.learningRate in body should be greater than 0"),
    ({"learningRate": 0.1},
     'Error from server (BadRequest): error when creating "STDIN": FinetuneJob in version "v1alpha1"'
     ' cannot be handled as a FinetuneJob: strict decoding error: unknown field "spec.learningRate"'),
    ({"method": {"type": "qlora"}},
     'The FinetuneJob "router" is invalid: spec: Invalid value: "object": method.type qlora needs'
     " GPUs: resources.gpus must be > 0"),
])
def test_kubectl_apply_rejects_what_the_crd_rejects(kubectl, kubetune_crds, http: RawApi,
                                                    spec_changes: dict, error: str) -> None:
    """kubectl apply sends fieldValidation=Strict; schema and CEL errors come back as 422 and
    kubectl prints the Status message (https://kubernetes.io/docs/tasks/extend-kubernetes/
    custom-resources/custom-resource-definitions/#validation)."""
    result = kubectl("apply", "-f", "-", stdin=manifest(**spec_changes), ok=False)
    assert error in result.stderr
    assert http.get("/apis/kubetune.io/v1alpha1/namespaces/default/finetunejobs/router").status_code == 404


def test_kubectl_merge_patch_of_an_immutable_field_is_rejected(kubectl, kubetune_crds) -> None:
    """The CRD's transition rule `self == oldSelf` guards spec.hyperparameters."""
    kubectl("apply", "-f", "-", stdin=manifest())
    result = kubectl("patch", "ftj", "router", "--type", "merge",
                     "-p", '{"spec":{"hyperparameters":{"learningRate":0.5}}}', ok=False)
    assert ('The FinetuneJob "router" is invalid: spec.hyperparameters: Invalid value: "object":'
            " is immutable once the job is created") in result.stderr


def test_kubectl_get_shows_the_schema_defaults(kubectl, kubetune_crds) -> None:
    kubectl("apply", "-f", "-", stdin=manifest())
    spec = yaml.safe_load(kubectl("get", "ftj", "router", "-o", "yaml").stdout)["spec"]
    assert spec["method"] == {"type": "lora", "lora": {"r": 16, "alpha": 32, "dropout": 0.05,
                                                       "targetModules": ["all-linear"]}}
    assert spec["hyperparameters"]["learningRate"] == 0.001 and spec["hyperparameters"]["epochs"] == 3


EVAL_JOB: dict = {
    "apiVersion": "kubetune.io/v1alpha1", "kind": "EvalJob", "metadata": {"name": "router-eval"},
    "spec": {"model": {"finetuneJobRef": {"name": "router"}},
             "dataset": {"uri": "pvc://data/test.jsonl"}, "thresholds": {"f1": 0.85}},
}


def _set_status(http: RawApi, plural: str, name: str, status: dict) -> None:
    path = f"/apis/kubetune.io/v1alpha1/namespaces/default/{plural}/{name}/status"
    response = http.patch(path, {"status": status})
    assert response.status_code == 200, response.text


def test_kubectl_get_fills_every_printer_column_of_the_jobs(kubectl, kubetune_crds,
                                                           http: RawApi) -> None:
    """kube-apiserver evaluates printer columns with client-go's JSONPath, filters included:
    EvalJob's PASSED, `.status.conditions[?(@.type=="Passed")].status`, must show the
    condition's status here too, not an empty cell."""
    kubectl("apply", "-f", "-", stdin=manifest())
    kubectl("apply", "-f", "-", stdin=yaml.safe_dump(EVAL_JOB))
    _set_status(http, "finetunejobs", "router", {
        "phase": "Running", "progress": {"percent": 40, "trainLoss": 0.41, "evalLoss": 0.38}})
    _set_status(http, "evaljobs", "router-eval", {
        "phase": "Succeeded", "samples": 200,
        "conditions": [{"type": "Succeeded", "status": "True", "reason": "Completed"},
                       {"type": "Passed", "status": "True", "reason": "ThresholdsMet"}]})

    header, row = (line.split() for line in kubectl("get", "evj").stdout.splitlines())
    assert header == ["NAME", "PHASE", "SAMPLES", "PASSED", "AGE"]
    assert row[:4] == ["router-eval", "Succeeded", "200", "True"]
    # -o wide: MODEL is empty by design (the model comes from finetuneJobRef; a null cell,
    # which kubectl prints as nothing).
    lines = kubectl("get", "evj", "-o", "wide").stdout.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "SAMPLES", "PASSED", "AGE", "MODEL",
                                "FINETUNEJOB"]
    cells = lines[1].split()
    assert cells[:4] + cells[5:] == ["router-eval", "Succeeded", "200", "True", "router"]

    lines = kubectl("get", "ftj", "-o", "wide").stdout.splitlines()
    assert lines[0].split() == ["NAME", "PHASE", "PROGRESS", "LOSS", "EVAL-LOSS", "AGE",
                                "MODEL", "METHOD", "GPUS"]
    cells = lines[1].split()
    assert cells[:5] + cells[6:] == ["router", "Running", "40", "0.41", "0.38",
                                     "hf://org/model", "lora", "0"]


def test_kubectl_apply_into_a_missing_namespace_is_not_found(kubectl, kubetune_crds) -> None:
    result = kubectl("apply", "-n", "nowhere", "-f", "-", stdin=manifest(), ok=False)
    assert 'namespaces "nowhere" not found' in result.stderr


def test_kubectl_strategic_patch_of_a_custom_resource_is_415(kubectl, kubetune_crds) -> None:
    """Custom resources take no strategic merge patch (apiserver handlers/patch.go)."""
    kubectl("apply", "-f", "-", stdin=manifest())
    result = kubectl("patch", "ftj", "router", "--type", "strategic",
                     "-p", '{"spec":{"suspend":true}}', ok=False)
    # kubectl recognises the 415 (errors.IsUnsupportedMediaType) and says which type failed.
    assert result.stderr.startswith(
        "error: application/strategic-merge-patch+json is not supported by kubetune.io/v1alpha1,"
        " Kind=FinetuneJob: the body of the request was in an unknown format - accepted media types"
        " include: application/apply-patch+yaml, application/json-patch+json,"
        " application/merge-patch+json")


@pytest.mark.parametrize(("change", "error"), [
    ({"metadata": {"labels": {"run": "r" * 71}}},
     f'The Job "train" is invalid: metadata.labels: Invalid value: "{"r" * 71}": must be no more'
     " than 63 characters"),
    ({"spec": {"template": {"spec": {"tolerations": [{"key": "gpu", "operator": "Sometimes"}]}}}},
     'The Job "train" is invalid: spec.template.spec.tolerations[0].operator: Unsupported value:'
     ' "Sometimes": supported values: "Equal", "Exists"'),
])
def test_kubectl_apply_of_an_invalid_job_is_rejected(kubectl, change: dict, error: str) -> None:
    job = {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "train"},
           "spec": {"template": {"spec": {"restartPolicy": "Never",
                                          "containers": [{"name": "main", "image": "busybox"}]}}}}
    merged = yaml.safe_load(yaml.safe_dump(job))
    for section, value in change.items():
        if section == "metadata":
            merged["metadata"].update(value)
        else:
            merged["spec"]["template"]["spec"].update(value["template"]["spec"])
    result = kubectl("apply", "-f", "-", stdin=yaml.safe_dump(merged), ok=False)
    assert error in result.stderr


def test_kubectl_version_shows_no_skew_warning(kubectl) -> None:
    """kubectl 1.32 warns "version difference ... exceeds the supported minor version skew"
    when the server is more than one minor release away."""
    result = kubectl("version")
    assert "Server Version: v1.32" in result.stdout
    assert "WARNING" not in result.stderr and "skew" not in result.stderr
