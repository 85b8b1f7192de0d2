"""Every documented way to install the chart renders manifests a Kubernetes API server accepts."""

from __future__ import annotations

import copy
import re

import helm_python
import kubernetes_validate
import pytest
import yaml
from kubetune.validation import validate_texts

from .chart import CHART_DIR, NAMESPACE, VARIANTS, render

KUBERNETES_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())
# Kinds of CRDs that kubernetes-validate has no schema for; test_custom_kinds checks them.
CUSTOM_API_GROUPS = ("monitoring.coreos.com/", "kopf.dev/")
CLUSTER_SCOPED_KINDS = {"ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition",
                        "ClusterKopfPeering", "ValidatingAdmissionPolicy",
                        "ValidatingAdmissionPolicyBinding", "ValidatingWebhookConfiguration"}


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("variant", VARIANTS)
def test_manifests_are_valid_kubernetes_objects(variant, version):
    for manifest in render(VARIANTS[variant]).manifests:
        if manifest["apiVersion"].startswith(CUSTOM_API_GROUPS):
            continue
        try:
            kubernetes_validate.validate(manifest, version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{variant}: {manifest['kind']} {manifest['metadata']['name']} "
                        f"is invalid for Kubernetes {version}: {error.message}")


def test_strict_validation_rejects_an_unknown_field():
    deployment = copy.deepcopy(render().deployment())
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContxt"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


@pytest.mark.parametrize("variant", VARIANTS)
def test_helm_lint_finds_nothing(variant):
    report = helm_python.lint(CHART_DIR, VARIANTS[variant], strict=True, namespace=NAMESPACE,
                              kube_version="v1.30.0")
    problems = [m for m in report["messages"] if m["severity"] >= 2]
    assert not report["errors"] and not problems, (report["errors"], problems)


@pytest.mark.parametrize("variant", VARIANTS)
def test_objects_are_named_and_namespaced(variant):
    values = VARIANTS[variant]
    namespaces = {NAMESPACE, *values.get("watchNamespaces", ())}
    seen = set()
    for manifest in render(values).manifests:
        metadata = manifest["metadata"]
        key = (manifest["kind"], metadata.get("namespace"), metadata["name"])
        assert key not in seen, f"{variant}: {key} rendered twice"
        seen.add(key)
        if manifest["kind"] in CLUSTER_SCOPED_KINDS:
            assert "namespace" not in metadata, key
        else:
            assert metadata.get("namespace") in namespaces, key


def test_custom_kinds_carry_what_their_crds_require():
    monitoring = render(VARIANTS["monitoring"])
    service = monitoring.one("Service")
    monitor = monitoring.one("ServiceMonitor")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    port_names = {port["name"] for port in service["spec"]["ports"]}
    assert monitor["spec"]["endpoints"] and all(
        endpoint["port"] in port_names and endpoint["path"] == "/metrics"
        for endpoint in monitor["spec"]["endpoints"])

    rule = monitoring.one("PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    for group in rule["spec"]["groups"]:
        assert group["name"] and group["rules"]
        for alert in group["rules"]:
            assert {"alert", "expr", "labels", "annotations"} <= alert.keys(), alert
            assert alert["labels"]["severity"] in {"warning", "critical"}
            assert re.fullmatch(r"\d+[smh]", alert.get("for", "0m")), alert

    for variant, kind in (("ha", "ClusterKopfPeering"), ("ha-namespaced", "KopfPeering")):
        for peering in render(VARIANTS[variant]).of_kind(kind):
            assert peering["apiVersion"] == "kopf.dev/v1"
            assert peering["metadata"]["name"] == "kubetune"
            # A custom resource cannot be created in the same step as its CRD: a hook.
            assert peering["metadata"]["annotations"]["helm.sh/hook"] == "post-install,post-upgrade"


def test_monitoring_objects_are_off_by_default():
    kinds = {m["kind"] for m in render().manifests}
    assert not kinds & {"ServiceMonitor", "PrometheusRule", "ConfigMap"}


def test_notes_show_a_first_job_that_passes_kubetune_validate():
    notes = render().notes
    assert "kubectl get kubetune" in notes
    assert "kubectl apply -f examples/finetune-classification.yaml" in notes
    manifest = re.search(r"^kubectl apply -n default -f - <<'MANIFEST'\n(.*?)\nMANIFEST$",
                         notes, re.S | re.M).group(1)
    count, problems = validate_texts([("NOTES.txt", manifest)])
    assert count == 1 and not problems, problems
    assert yaml.safe_load(manifest)["kind"] == "FinetuneJob"


def test_notes_use_a_watched_namespace():
    notes = render(VARIANTS["namespaced"]).notes
    assert "kubectl get kubetune -n team-a" in notes
    assert "team-a, team-b" in notes
