"""No confused deputy, through the local cluster: the chart's ValidatingAdmissionPolicies
installed in the emulator in RBAC mode, users with their own tokens and Roles.

For each field, a user who may only create FinetuneJobs and EvalJobs is refused, and a user who
may also `get` the named object succeeds; as kube-apiserver evaluates a policy's `authorizer`
for the requesting user against its RBAC authorizer
(https://kubernetes.io/docs/reference/access-authn-authz/validating-admission-policy/), and
answers SubjectAccessReviews from the same RBAC
(https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access).
"""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Iterator
from pathlib import Path

import kubernetes
import pytest
import requests
from kubetune.admission.placement import IMAGE
from kubetune.admission.review import access_review
from kubetune.admission.rules import RULES, requirements
from kubetune.emulator import ApiServerEmulator, EmulatorThread
from kubetune.emulator.authorization import User
from kubetune.emulator.kubeconfig import DUMMY_TOKEN
from kubetune.operator.kube import Kube

from ..helm.chart import render
from .objects import NAMESPACE, naming

REPO_ROOT = Path(__file__).resolve().parents[2]
RBAC = "/apis/rbac.authorization.k8s.io/v1"
PLURALS = {"FinetuneJob": "finetunejobs", "EvalJob": "evaljobs"}
POLICY_PLURALS = {"ValidatingAdmissionPolicy": "validatingadmissionpolicies",
                  "ValidatingAdmissionPolicyBinding": "validatingadmissionpolicybindings"}
# What the named objects are called; bob may get exactly these.
THE_OBJECT = "the-object"


class Api:
    def __init__(self, url: str, token: str) -> None:
        self.url, self.session = url, requests.Session()
        self.session.headers["Authorization"] = f"Bearer {token}"

    def post(self, path: str, body: dict) -> requests.Response:
        return self.session.post(self.url + path, json=body, timeout=10)

    def patch(self, path: str, body: dict) -> requests.Response:
        return self.session.patch(self.url + path, json=body, timeout=10,
                                  headers={"Content-Type": "application/merge-patch+json"})

    def create(self, obj: dict) -> requests.Response:
        return self.post(f"/apis/kubetune.io/v1alpha1/namespaces/{NAMESPACE}/"
                         f"{PLURALS[obj['kind']]}", obj)


def _role(admin: Api, name: str, rules: list[dict], users: list[str]) -> None:
    assert admin.post(f"{RBAC}/namespaces/{NAMESPACE}/roles",
                      {"metadata": {"name": name}, "rules": rules}).status_code == 201
    assert admin.post(f"{RBAC}/namespaces/{NAMESPACE}/rolebindings", {
        "metadata": {"name": name},
        "subjects": [{"kind": "User", "name": u, "apiGroup": "rbac.authorization.k8s.io"}
                     for u in users],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
    }).status_code == 201


@pytest.fixture(scope="module")
def cluster() -> Iterator[tuple[EmulatorThread, Api, Api]]:
    with EmulatorThread(ApiServerEmulator(rbac=True), crds=REPO_ROOT / "crds") as running:
        admin = Api(running.url, DUMMY_TOKEN)
        assert admin.post("/api/v1/namespaces", {"metadata": {"name": NAMESPACE}}).ok
        for manifest in render().manifests:  # the chart's policies, as `helm install` applies them
            plural = POLICY_PLURALS.get(manifest["kind"])
            if plural:
                response = admin.post(f"/apis/admissionregistration.k8s.io/v1/{plural}", manifest)
                assert response.status_code == 201, response.text
        # Writing jobs, reading EvalJobs; reading a FinetuneJob is a right of its own (an
        # EvalJob of it reads its outputs), given to bob by name below.
        jobs = {"apiGroups": ["kubetune.io"], "resources": ["finetunejobs", "evaljobs"],
                "verbs": ["create", "patch", "update"]}
        read = {"apiGroups": ["kubetune.io"], "resources": ["evaljobs"], "verbs": ["get"]}
        _role(admin, "kubetune-user", [jobs, read], ["alice", "bob"])
        _role(admin, "named-objects", [
            {"apiGroups": [""], "resources": ["secrets", "persistentvolumeclaims"],
             "verbs": ["get"], "resourceNames": [THE_OBJECT]},
            {"apiGroups": ["kubetune.io"], "resources": ["finetunejobs"], "verbs": ["get"],
             "resourceNames": [THE_OBJECT]},
            # A create names no object: RBAC cannot grant it by resourceName.
            {"apiGroups": ["serving.kserve.io"],
             "resources": ["inferenceservices", "llminferenceservices"], "verbs": ["create"]},
        ], ["bob"])
        tokens = running.call(lambda e: (
            e.authenticator.issue_token(User("alice", ("system:authenticated",))),
            e.authenticator.issue_token(User("bob", ("system:authenticated",)))))
        yield running, Api(running.url, tokens[0]), Api(running.url, tokens[1])


def _renamed(obj: dict, suffix: str) -> dict:
    obj = copy.deepcopy(obj)
    obj["metadata"]["name"] += suffix
    return obj


def _rule_id(rule) -> str:
    return f"{rule.kind}:{rule.field}" + (f":{rule.resource}" if rule.reference == "flag" else "")


@pytest.mark.parametrize("rule", RULES, ids=_rule_id)
def test_only_a_user_who_may_get_the_named_object_may_name_it(cluster, rule):
    _, alice, bob = cluster
    suffix = "-" + rule.field.replace("[]", "").replace(".", "-").lower()[5:40].strip("-")
    if rule.reference == "flag":
        suffix += "-" + rule.resource[:3]
    refused = alice.create(_renamed(naming(rule, THE_OBJECT), suffix))
    assert refused.status_code == 403, refused.text
    message = refused.json()["message"]
    assert f"ValidatingAdmissionPolicy 'kubetune-{PLURALS[rule.kind]}'" in message
    assert message.endswith(rule.message)
    created = bob.create(_renamed(naming(rule, THE_OBJECT), suffix))
    assert created.status_code == 201, created.text


def test_an_image_beyond_the_allowlist_is_refused_even_for_a_user_with_every_right(cluster):
    _, _, bob = cluster
    obj = _renamed(naming(RULES[0], THE_OBJECT), "-image")
    obj["spec"]["image"] = "docker.io/someone/miner:latest"
    refused = bob.create(obj)
    assert refused.status_code == 403 and IMAGE.message in refused.json()["message"]
    obj["spec"]["image"] = "ghcr.io/kubetune/trainer:0.1.0"  # the chart's default trainer image
    assert bob.create(obj).status_code == 201


def test_an_update_is_judged_only_on_the_fields_it_changes(cluster):
    _, alice, bob = cluster
    rule = RULES[0]
    obj = _renamed(naming(rule, THE_OBJECT), "-update")
    assert bob.create(obj).status_code == 201
    path = (f"/apis/kubetune.io/v1alpha1/namespaces/{NAMESPACE}/finetunejobs/"
            f"{obj['metadata']['name']}")
    assert alice.patch(path, {"metadata": {"labels": {"team": "a"}}}).status_code == 200
    refused = alice.patch(path, {"spec": {"checkpointing": {"keep": 3},
                                          "evaluation": {"dataset": {"secretRef": {
                                              "name": THE_OBJECT}}}}})
    assert refused.status_code == 403, refused.text


def test_subject_access_reviews_are_answered_from_rbac(cluster):
    """What the operator's webhook asks, through kube.py, as a user allowed to ask."""
    running, _, _ = cluster
    rule = next(r for r in RULES if r.resource == "persistentvolumeclaims")
    (needed,) = requirements(rule.kind, naming(rule, THE_OBJECT))
    configuration = kubernetes.client.Configuration()
    configuration.host = running.url
    configuration.api_key = {"authorization": f"Bearer {DUMMY_TOKEN}"}

    async def ask() -> list[bool]:
        kube = Kube(configuration)
        try:
            return [await kube.review_access(access_review({"username": user, "groups": []},
                                                           needed))
                    for user in ("alice", "bob")]
        finally:
            await kube.aclose()

    assert asyncio.run(ask()) == [False, True]


def test_impersonating_a_user_gets_that_users_verdict(cluster):
    """`kubectl --as=alice` (Impersonate-User): the policy judges alice, not the admin."""
    running, _, _ = cluster
    admin = Api(running.url, DUMMY_TOKEN)
    rule = next(r for r in RULES if r.resource == "secrets")
    obj = _renamed(naming(rule, THE_OBJECT), "-impersonated")
    for user, code in (("alice", 403), ("bob", 201)):
        admin.session.headers["Impersonate-User"] = user
        assert admin.create(_renamed(obj, f"-{user}")).status_code == code
