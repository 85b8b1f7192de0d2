"""The operator pod meets the "restricted" Pod Security Standard; its traffic is fenced in."""

from __future__ import annotations

import pytest

from .chart import NAMESPACE, VARIANTS, render


@pytest.mark.parametrize("variant", VARIANTS)
def test_operator_pod_meets_the_restricted_pod_security_standard(variant):
    rendered = render(VARIANTS[variant])
    pod = rendered.deployment()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 1000
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        assert not pod.get(field), field
    assert all("hostPath" not in volume for volume in pod.get("volumes", []))
    for container in pod["containers"] + pod.get("initContainers", []):
        context = container["securityContext"]
        assert context["allowPrivilegeEscalation"] is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["readOnlyRootFilesystem"] is True
        assert context.get("privileged", False) is False
        assert context.get("runAsNonRoot", True) is True
        assert context.get("runAsUser", 1000) != 0
        assert context.get("seccompProfile", {"type": "RuntimeDefault"})["type"] == "RuntimeDefault"
        assert all("hostPort" not in port for port in container.get("ports", []))
        # The root filesystem is read-only: whatever writes must have a volume; the only other
        # mount is the webhook's certificate, read-only.
        assert {m["mountPath"] for m in container["volumeMounts"] if not m.get("readOnly")} == {
            "/tmp"}
        assert {m["mountPath"] for m in container["volumeMounts"] if m.get("readOnly")} <= {
            "/etc/kubetune/webhook"}


def test_only_the_operator_pod_mounts_an_api_token():
    rendered = render()
    assert rendered.one("ServiceAccount")["automountServiceAccountToken"] is False
    assert rendered.deployment()["spec"]["template"]["spec"]["automountServiceAccountToken"] is True


def _egress_ports(rule: dict) -> set[tuple[str, int | str]]:
    return {(p.get("protocol", "TCP"), p["port"]) for p in rule.get("ports", [])}


def test_network_policy_allows_api_server_dns_trainers_and_scrapes_only():
    rendered = render()
    policy = rendered.one("NetworkPolicy")["spec"]
    pod_labels = rendered.deployment()["spec"]["template"]["metadata"]["labels"]
    assert policy["podSelector"]["matchLabels"].items() <= pod_labels.items()
    assert set(policy["policyTypes"]) == {"Ingress", "Egress"}

    assert {port["port"] for rule in policy["ingress"] for port in rule["ports"]} == {
        "metrics", "health"}

    api, dns, trainers = policy["egress"]
    assert _egress_ports(api) == {("TCP", 443), ("TCP", 6443)}
    assert _egress_ports(dns) == {("UDP", 53), ("TCP", 53)}
    assert dns["to"][0]["podSelector"]["matchLabels"] == {"k8s-app": "kube-dns"}
    assert _egress_ports(trainers) == {("TCP", 8000)}
    assert trainers["to"] == [{"podSelector": {"matchLabels": {"app.kubernetes.io/managed-by": "kubetune"}},
                               "namespaceSelector": {}}]


def test_namespaced_network_policy_reaches_trainers_in_watched_namespaces_only():
    policy = render(VARIANTS["namespaced"]).one("NetworkPolicy")["spec"]
    selector = policy["egress"][2]["to"][0]["namespaceSelector"]
    assert selector == {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In",
                                              "values": ["team-a", "team-b"]}]}


def test_network_policy_follows_the_progress_port_and_takes_extra_rules():
    values = {**VARIANTS["platform-defaults"], "trainer": {"progressPort": 8500}}
    policy = render(values).one("NetworkPolicy")["spec"]
    assert _egress_ports(policy["egress"][2]) == {("TCP", 8500)}
    assert policy["egress"][3] == {"to": [{"ipBlock": {"cidr": "10.0.0.0/8"}}], "ports": [{"port": 9000}]}
    metrics_rule = next(r for r in policy["ingress"] if r["ports"][0]["port"] == "metrics")
    assert metrics_rule["from"] == [{"namespaceSelector": {"matchLabels": {"name": "monitoring"}}}]


def test_network_policy_can_be_turned_off():
    assert not render({"networkPolicy": {"enabled": False}}).of_kind("NetworkPolicy")
    assert render().one("NetworkPolicy")["metadata"]["namespace"] == NAMESPACE
