"""With a status subresource, the main resource ignores status and /status changes only it."""

from __future__ import annotations

from emulator_helpers import JOB_SPEC, RawApi

WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


def test_status_is_dropped_on_create(widgets: RawApi) -> None:
    created = widgets.post(WIDGETS, {"metadata": {"name": "w"}, "status": {"phase": "Done"}})
    assert "status" not in created.json()


def test_writes_to_the_main_resource_ignore_status(widgets: RawApi) -> None:
    widgets.post(WIDGETS, {"metadata": {"name": "w"}, "spec": {"size": 1}})
    widgets.patch(f"{WIDGETS}/w/status", {"status": {"phase": "Running"}})
    patched = widgets.patch(f"{WIDGETS}/w", {"spec": {"size": 2}, "status": {"phase": "Done"}})
    assert patched.json()["status"] == {"phase": "Running"}
    assert patched.json()["spec"] == {"size": 2}


def test_status_writes_change_only_status_and_keep_generation(widgets: RawApi) -> None:
    widgets.post(WIDGETS, {"metadata": {"name": "w"}, "spec": {"size": 1}})
    patched = widgets.patch(f"{WIDGETS}/w/status", {
        "spec": {"size": 5}, "metadata": {"labels": {"a": "b"}}, "status": {"phase": "Running"}})
    body = patched.json()
    assert body["status"] == {"phase": "Running"}
    assert body["spec"] == {"size": 1}
    assert "labels" not in body["metadata"]
    assert body["metadata"]["generation"] == 1


def test_put_to_status(widgets: RawApi) -> None:
    created = widgets.post(WIDGETS, {"metadata": {"name": "w"}, "spec": {"size": 1}}).json()
    created["status"] = {"phase": "Done"}
    created["spec"] = {"size": 9}
    replaced = widgets.put(f"{WIDGETS}/w/status", created).json()
    assert replaced["status"] == {"phase": "Done"} and replaced["spec"] == {"size": 1}


def test_job_status_subresource(http: RawApi) -> None:
    jobs = "/apis/batch/v1/namespaces/default/jobs"
    http.post(jobs, {"metadata": {"name": "j"}, "spec": JOB_SPEC})
    http.patch(f"{jobs}/j/status", {"status": {"succeeded": 1}})
    assert http.get(f"{jobs}/j").json()["status"] == {"succeeded": 1}


def test_resources_without_status_subresource_have_no_status_endpoint(http: RawApi) -> None:
    http.post("/api/v1/namespaces/default/configmaps", {"metadata": {"name": "c"}})
    response = http.patch("/api/v1/namespaces/default/configmaps/c/status", {"status": {}})
    assert response.status_code == 404
