"""CRDs: creating one serves its resource (discovery and CRUD); CRD files load from a folder."""

from __future__ import annotations

import copy
import pathlib

import yaml
from emulator_helpers import WIDGET_CRD, RawApi
from kubetune.emulator import EmulatorThread, read_crd_documents

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def test_creating_a_crd_registers_its_resource_in_discovery(widgets: RawApi) -> None:
    groups = widgets.get("/apis").json()["groups"]
    example = next(group for group in groups if group["name"] == "example.com")
    assert example["preferredVersion"]["groupVersion"] == "example.com/v1"
    resources = widgets.get("/apis/example.com/v1").json()["resources"]
    by_name = {resource["name"]: resource for resource in resources}
    assert by_name["widgets"]["kind"] == "Widget"
    assert by_name["widgets"]["namespaced"] is True
    assert by_name["widgets"]["shortNames"] == ["wd"]
    assert by_name["widgets"]["categories"] == ["all"]
    assert "widgets/status" in by_name


def test_custom_objects_support_crud(widgets: RawApi) -> None:
    path = "/apis/example.com/v1/namespaces/default/widgets"
    assert widgets.get(path).json()["items"] == []
    created = widgets.post(path, {"apiVersion": "example.com/v1", "kind": "Widget",
                                  "metadata": {"name": "w"}, "spec": {"size": 1}})
    assert created.status_code == 201
    assert widgets.get(f"{path}/w").json()["spec"] == {"size": 1}
    assert widgets.delete(f"{path}/w").status_code == 200
    assert widgets.get(f"{path}/w").status_code == 404


def test_cluster_scoped_crd(http: RawApi) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "gadgets.example.com"
    crd["spec"]["scope"] = "Cluster"
    crd["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
    assert http.post(CRDS, crd).status_code == 201
    created = http.post("/apis/example.com/v1/gadgets", {"metadata": {"name": "g"}}).json()
    assert "namespace" not in created["metadata"]
    assert http.get("/apis/example.com/v1/namespaces/default/gadgets").status_code == 404
    assert [item["metadata"]["name"] for item in
            http.get("/apis/example.com/v1/gadgets").json()["items"]] == ["g"]


def test_crd_reports_established(widgets: RawApi) -> None:
    crd = widgets.get(f"{CRDS}/widgets.example.com").json()
    conditions = {c["type"]: c["status"] for c in crd["status"]["conditions"]}
    assert conditions["Established"] == "True"


def test_crd_name_must_be_plural_dot_group(http: RawApi) -> None:
    crd = copy.deepcopy(WIDGET_CRD)
    crd["metadata"]["name"] = "wrong.example.com"
    assert http.post(CRDS, crd).status_code == 422


def test_deleting_a_crd_unregisters_the_resource_and_its_objects(widgets: RawApi) -> None:
    path = "/apis/example.com/v1/namespaces/default/widgets"
    widgets.post(path, {"metadata": {"name": "w"}})
    assert widgets.delete(f"{CRDS}/widgets.example.com").status_code == 200
    assert widgets.get(path).status_code == 404
    assert widgets.get("/apis/example.com/v1").status_code == 404


def test_crds_load_from_a_folder_of_yaml_files(tmp_path: pathlib.Path) -> None:
    second = copy.deepcopy(WIDGET_CRD)
    second["metadata"]["name"] = "gadgets.example.com"
    second["spec"]["names"] = {"plural": "gadgets", "kind": "Gadget"}
    (tmp_path / "widgets.example.com.yaml").write_text(yaml.safe_dump(WIDGET_CRD))
    (tmp_path / "gadgets.example.com.yaml").write_text(
        "# a comment\n---\n" + yaml.safe_dump(second))
    assert len(read_crd_documents(tmp_path)) == 2
    with EmulatorThread(crds=tmp_path) as cluster:
        names = cluster.call(lambda emulator: sorted(
            crd["metadata"]["name"] for crd in
            emulator.store.list(("apiextensions.k8s.io", "customresourcedefinitions"))))
        assert names == ["gadgets.example.com", "widgets.example.com"]
        assert cluster.call(lambda emulator: emulator.registry.lookup(
            "example.com", "v1", "gadgets")) is not None
