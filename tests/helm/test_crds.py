"""The chart's CRDs are crds/*.yaml, installed and upgraded with the release unless turned off."""

from __future__ import annotations

import importlib.util

import yaml

from .chart import CHART_DIR, REPO_ROOT, render

SOURCES = {path.name: path for path in sorted((REPO_ROOT / "crds").glob("*.yaml"))}


def _sync_module():
    spec = importlib.util.spec_from_file_location("sync_crds", REPO_ROOT / "helm" / "sync-crds.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_chart_templates_are_the_generated_crds_behind_the_guard():
    """Fails after `make crds` until `python helm/sync-crds.py` copies them into the chart."""
    templates = {path.name: path.read_text() for path in (CHART_DIR / "templates" / "crd").glob("*.yaml")}
    assert templates.keys() == SOURCES.keys()
    sync = _sync_module()
    for name, text in templates.items():
        assert text.startswith("{{- if .Values.crds.enabled }}\n") and text.endswith("{{- end }}\n")
        assert text == sync.crd_template(name, SOURCES[name].read_text()), (
            f"helm/kubetune/templates/crd/{name} is stale: run python helm/sync-crds.py")
    assert sync.differences() == []


def test_rendered_crds_equal_the_generated_ones():
    rendered = {crd["metadata"]["name"]: crd
                for crd in render({"crds": {"keep": False}}).of_kind("CustomResourceDefinition")}
    generated = {crd["metadata"]["name"]: crd
                 for crd in (yaml.safe_load(path.read_text()) for path in SOURCES.values())}
    assert rendered == generated


def test_crds_are_kept_on_uninstall_by_default():
    for crd in render().of_kind("CustomResourceDefinition"):
        assert crd["metadata"]["annotations"] == {"helm.sh/resource-policy": "keep"}


def test_crds_can_be_left_out():
    assert not render({"crds": {"enabled": False}}).of_kind("CustomResourceDefinition")
    # Standby replicas still peer, through CRDs installed elsewhere.
    ha = render({"crds": {"enabled": False}, "replicaCount": 2})
    assert not ha.of_kind("CustomResourceDefinition") and ha.of_kind("ClusterKopfPeering")


def test_kopf_peering_crds_can_be_left_to_another_kopf_operator():
    names = {crd["metadata"]["name"] for crd in render(
        {"replicaCount": 2, "peering": {"crds": False}}).of_kind("CustomResourceDefinition")}
    assert names == {yaml.safe_load(path.read_text())["metadata"]["name"] for path in SOURCES.values()}


def test_template_braces_in_a_description_stay_literal():
    sync = _sync_module()
    text = "kind: CustomResourceDefinition\nmetadata:\n  name: x\ndescription: a {{ b }}\n"
    template = sync.crd_template("x.yaml", text)
    assert '{{ "{{" }} b }}' in template
    assert "  {{- if .Values.crds.keep }}\n  annotations:\n    helm.sh/resource-policy: keep\n" in template
