"""Every API call the operator makes is covered by the RBAC permission list (and so by the
Helm chart, whose test compares its rules with the same list)."""

from kubetune.operator.kube import permissions_used
from kubetune.operator.rbac import (
    PERMISSIONS,
    POLICY_PERMISSIONS,
    SERVING_PERMISSIONS,
    WEBHOOK_PERMISSIONS,
)


def test_every_kube_call_has_a_permission():
    granted = {(p.api_group, p.resource, verb)
               for p in (*PERMISSIONS, *POLICY_PERMISSIONS, *SERVING_PERMISSIONS,
                         *WEBHOOK_PERMISSIONS)
               for verb in p.verbs}
    used = permissions_used()
    assert used, "the Kube methods declare no permissions"
    assert used <= granted, f"calls without RBAC: {sorted(used - granted)}"


def test_watched_resources_can_be_listed_and_watched():
    watched = {("kubetune.io", "finetunejobs"), ("kubetune.io", "evaljobs"), ("batch", "jobs"),
               ("", "pods")}
    granted = {(p.api_group, p.resource): set(p.verbs) for p in PERMISSIONS}
    granted.update({(p.api_group, p.resource): set(p.verbs) for p in POLICY_PERMISSIONS})
    watched |= {("kubetune.io", "clusterfinetunepolicies"), ("", "namespaces")}
    for resource in watched:
        assert {"list", "watch"} <= granted[resource]
