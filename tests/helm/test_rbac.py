"""The chart grants the operator exactly the API permissions it uses: rbac.py's PERMISSIONS."""

from __future__ import annotations

from collections import defaultdict

import pytest
from kubetune.operator.rbac import (
    PERMISSIONS,
    POLICY_PERMISSIONS,
    SERVING_PERMISSIONS,
    WEBHOOK_PERMISSIONS,
)

from .chart import NAMESPACE, VARIANTS, render

# Resources a namespaced Role cannot grant. In namespaced mode the operator goes without them
# (kopf peers through KopfPeerings in the watched namespaces instead).
CLUSTER_SCOPED = {("kopf.dev", "clusterkopfpeerings"), ("kubetune.io", "clusterfinetuneruntimes")}
RUNTIMES_ROLE = {("kubetune.io", "clusterfinetuneruntimes"): {"get", "list", "watch"}}

CLUSTER_WIDE_VARIANTS = [name for name, values in VARIANTS.items() if not values.get("watchNamespaces")]
NAMESPACED_VARIANTS = [name for name, values in VARIANTS.items() if values.get("watchNamespaces")]


def granted(rules: list[dict]) -> dict[tuple[str, str], set[str]]:
    """(API group, resource) -> verbs, over all rules."""
    verbs: dict[tuple[str, str], set[str]] = defaultdict(set)
    for rule in rules:
        assert "nonResourceURLs" not in rule and "resourceNames" not in rule, rule
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                verbs[(group, resource)] |= set(rule["verbs"])
    return dict(verbs)


def needed(*, without: set[tuple[str, str]] = frozenset(),
           serving: bool = False) -> dict[tuple[str, str], set[str]]:
    """What the operator's main (Cluster)Role must grant; KServe only with serving.create."""
    return {(p.api_group, p.resource): set(p.verbs)
            for p in (*PERMISSIONS, *(SERVING_PERMISSIONS if serving else ()))
            if (p.api_group, p.resource) not in without}


def _serving(variant: str) -> bool:
    return bool(VARIANTS[variant].get("serving", {}).get("create"))


def assert_no_wildcards(rules: list[dict]) -> None:
    for rule in rules:
        for field in ("apiGroups", "resources", "verbs"):
            assert not any("*" in item for item in rule[field]), f"wildcard in {field}: {rule}"


@pytest.mark.parametrize("variant", CLUSTER_WIDE_VARIANTS)
def test_cluster_role_grants_exactly_the_operators_permissions(variant):
    rendered = render(VARIANTS[variant])
    role = _main(rendered.of_kind("ClusterRole"))
    assert_no_wildcards(role["rules"])
    assert granted(role["rules"]) == needed(serving=_serving(variant))
    assert not rendered.of_kind("Role") and not rendered.of_kind("RoleBinding")

    binding = _main(rendered.of_kind("ClusterRoleBinding"))
    assert binding["roleRef"] == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                  "name": role["metadata"]["name"]}
    account = rendered.one("ServiceAccount")["metadata"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account["name"],
                                    "namespace": NAMESPACE}]


@pytest.mark.parametrize("variant", NAMESPACED_VARIANTS)
def test_watched_namespaces_get_roles_and_nothing_is_cluster_wide(variant):
    values = VARIANTS[variant]
    rendered = render(values)
    assert not _main(rendered.of_kind("ClusterRole"), optional=True)
    assert not _main(rendered.of_kind("ClusterRoleBinding"), optional=True)
    roles = {r["metadata"]["namespace"]: r for r in rendered.of_kind("Role")}
    bindings = {b["metadata"]["namespace"]: b for b in rendered.of_kind("RoleBinding")}
    assert roles.keys() == bindings.keys() == set(values["watchNamespaces"])
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    for namespace, role in roles.items():
        assert_no_wildcards(role["rules"])
        assert granted(role["rules"]) == needed(without=CLUSTER_SCOPED, serving=_serving(variant))
        binding = bindings[namespace]
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["roleRef"]["name"] == role["metadata"]["name"]
        assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                        "namespace": NAMESPACE}]


@pytest.mark.parametrize("variant", NAMESPACED_VARIANTS)
def test_watched_namespaces_still_read_cluster_runtimes_and_nothing_else_cluster_wide(variant):
    """A ClusterFinetuneRuntime lives in no namespace: a namespaced operator reads it through a
    ClusterRole of its own that grants only that."""
    rendered = render(VARIANTS[variant])
    (role,) = [r for r in rendered.of_kind("ClusterRole") if r["metadata"]["name"].endswith("-runtimes")]
    assert granted(role["rules"]) == RUNTIMES_ROLE
    (binding,) = [b for b in rendered.of_kind("ClusterRoleBinding")
                  if b["metadata"]["name"] == role["metadata"]["name"]]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"][0]["name"] == rendered.one("ServiceAccount")["metadata"]["name"]


def _main(objects: list[dict], optional: bool = False) -> dict | None:
    """The operator's (Cluster)Role or binding, not the webhook's, the policy reader's or the
    user-facing roles."""
    main = [o for o in objects
            if not o["metadata"]["name"].endswith(("-webhook", "-runtimes", "-policies", "-edit",
                                                   "-view", "-reader", "-platform"))]
    if optional and not main:
        return None
    (found,) = main
    return found


@pytest.mark.parametrize("variant", VARIANTS)
def test_subject_access_reviews_are_granted_only_with_the_webhook(variant):
    """SubjectAccessReviews are cluster-scoped: a ClusterRole of their own, even when the
    operator otherwise has only Roles in watched namespaces."""
    rendered = render(VARIANTS[variant])
    webhook_roles = [r for r in rendered.of_kind("ClusterRole")
                     if r["metadata"]["name"].endswith("-webhook")]
    if not VARIANTS[variant].get("webhook", {}).get("enabled"):
        assert not webhook_roles and not rendered.of_kind("ValidatingWebhookConfiguration")
        return
    (role,) = webhook_roles
    assert granted(role["rules"]) == {(p.api_group, p.resource): set(p.verbs)
                                      for p in WEBHOOK_PERMISSIONS}
    (binding,) = [b for b in rendered.of_kind("ClusterRoleBinding")
                  if b["metadata"]["name"] == role["metadata"]["name"]]
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                    "namespace": NAMESPACE}]


def test_the_cluster_scoped_list_names_real_permissions():
    assert needed().keys() >= CLUSTER_SCOPED


def test_operator_runs_as_the_bound_service_account():
    rendered = render()
    pod = rendered.deployment()["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == rendered.one("ServiceAccount")["metadata"]["name"]


def test_rbac_can_be_left_to_the_cluster_admin():
    kinds = {m["kind"] for m in render({"rbac": {"create": False}}).manifests}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


@pytest.mark.parametrize("variant", VARIANTS)
def test_the_operator_reads_policies_and_namespaces_cluster_wide_in_every_mode(variant):
    """ClusterFinetunePolicies and Namespaces are cluster-scoped: a Role cannot grant them."""
    rendered = render(VARIANTS[variant])
    (role,) = [r for r in rendered.of_kind("ClusterRole")
               if r["metadata"]["name"] == "kubetune-policies"]
    assert_no_wildcards(role["rules"])
    assert granted(role["rules"]) == {(p.api_group, p.resource): set(p.verbs)
                                      for p in POLICY_PERMISSIONS}
    (binding,) = [b for b in rendered.of_kind("ClusterRoleBinding")
                  if b["metadata"]["name"] == "kubetune-policies"]
    assert binding["roleRef"]["name"] == "kubetune-policies"
    account = rendered.one("ServiceAccount")["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": account,
                                    "namespace": NAMESPACE}]


def test_teams_edit_jobs_and_read_policies_and_only_the_platform_role_writes_policies():
    roles = {r["metadata"]["name"]: r for r in render().of_kind("ClusterRole")}
    edit, view = roles["kubetune-edit"], roles["kubetune-view"]
    labels = edit["metadata"]["labels"]
    assert labels["rbac.authorization.k8s.io/aggregate-to-edit"] == "true"
    assert labels["rbac.authorization.k8s.io/aggregate-to-admin"] == "true"
    assert view["metadata"]["labels"]["rbac.authorization.k8s.io/aggregate-to-view"] == "true"
    writes = {"create", "update", "patch", "delete"}
    for name, role in roles.items():
        policy_verbs = granted(role["rules"]).get(("kubetune.io", "clusterfinetunepolicies"), set())
        assert not (policy_verbs & writes) or name == "kubetune-platform", name
    assert writes <= granted(roles["kubetune-platform"]["rules"])[
        ("kubetune.io", "clusterfinetunepolicies")]
    assert writes <= granted(edit["rules"])[("kubetune.io", "finetunejobs")]
    assert granted(edit["rules"])[("kubetune.io", "clusterfinetunepolicies")] == {
        "get", "list", "watch"}
    assert not writes & granted(view["rules"])[("kubetune.io", "evaljobs")]
