"""The operator's webhook decision: a SubjectAccessReview per permission the rule table requires,
for the requester the API server authenticated, refused with the policy's own messages."""

from __future__ import annotations

import asyncio
import copy

import aiohttp.web
import kubernetes
import pytest
from kubetune.admission.placement import IMAGE, PlacementPolicy
from kubetune.admission.review import access_review, refusals
from kubetune.admission.rules import RULES, requirements
from kubetune.operator.kube import Kube

from .objects import FLAG_RULES, NAMESPACE, NAMING_RULES, naming

ALICE = {"username": "alice", "uid": "u-1", "groups": ["team-a", "system:authenticated"],
         "extra": {"scopes.example.com": ["read"]}}
POLICY = PlacementPolicy(images=("ghcr.io/kubetune/trainer:0.1.0",))


class SarTable:
    """A fake SubjectAccessReview responder: allowed when (user, verb, group, resource,
    namespace, name) is in its table. It records each review it was asked."""

    def __init__(self, *grants: tuple[str, str, str, str, str, str]) -> None:
        self.grants, self.asked = set(grants), []

    async def __call__(self, review: dict) -> bool:
        self.asked.append(review)
        spec = review["spec"]
        attributes = spec["resourceAttributes"]
        return (spec["user"], attributes["verb"], attributes["group"], attributes["resource"],
                attributes["namespace"], attributes.get("name", "")) in self.grants


def grant(user: str, rule, name: str) -> tuple[str, str, str, str, str, str]:
    return (user, rule.verb, rule.group, rule.resource, NAMESPACE, name)


def decide(kind, obj, old=None, user=ALICE, sar=None, exempt=()):
    return asyncio.run(refusals(kind, obj, old, user, sar or SarTable(), POLICY, exempt))


def test_the_review_asks_about_the_requester_and_the_named_object():
    rule = next(r for r in RULES if r.field == "spec.model.secretRef" and r.kind == "FinetuneJob")
    (needed,) = requirements(rule.kind, naming(rule, "hf-token"))
    assert access_review(ALICE, needed) == {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SubjectAccessReview",
        "spec": {
            "user": "alice", "uid": "u-1", "groups": ["team-a", "system:authenticated"],
            "extra": {"scopes.example.com": ["read"]},
            "resourceAttributes": {"namespace": NAMESPACE, "verb": "get", "group": "",
                                   "resource": "secrets", "name": "hf-token"},
        },
    }


@pytest.mark.parametrize("rule", NAMING_RULES, ids=lambda r: f"{r.kind}:{r.field}")
def test_each_field_is_refused_without_the_right_and_allowed_with_it(rule):
    obj = naming(rule, "the-object")
    sar = SarTable(grant("alice", rule, "another-object"))
    assert decide(rule.kind, obj, sar=sar) == [rule.message]  # the policy's words
    assert [r["spec"]["resourceAttributes"]["name"] for r in sar.asked] == ["the-object"]
    assert decide(rule.kind, obj, sar=SarTable(grant("alice", rule, "the-object"))) == []


@pytest.mark.parametrize("rule", RULES[:3], ids=lambda r: f"{r.kind}:{r.field}")
def test_an_identity_written_into_the_object_is_not_trusted(rule):
    obj = naming(rule, "the-object")
    obj["metadata"]["annotations"] = {"kubetune.io/requested-by": "admin"}
    obj["metadata"]["managedFields"] = [{"manager": "admin", "operation": "Apply"}]
    sar = SarTable(grant("admin", rule, "the-object"))
    assert decide(rule.kind, obj, sar=sar) == [rule.message]
    assert {r["spec"]["user"] for r in sar.asked} == {"alice"}


def test_an_unchanged_field_is_not_asked_about_on_update():
    rule = RULES[0]
    old = naming(rule, "the-object")
    new = copy.deepcopy(old)
    new["spec"]["suspend"] = True
    sar = SarTable()
    assert decide(rule.kind, new, old, sar=sar) == [] and sar.asked == []


def test_the_operator_itself_is_exempt():
    operator = {"username": "system:serviceaccount:kubetune-system:kubetune", "groups": []}
    assert decide(RULES[0].kind, naming(RULES[0], "x"), user=operator,
                  exempt=(operator["username"],)) == []


def test_placement_is_judged_with_the_operators_allowlists():
    obj = naming(RULES[0], "x")
    obj["spec"]["image"] = "docker.io/someone/miner:latest"
    messages = decide("FinetuneJob", obj, sar=SarTable(grant("alice", RULES[0], "x")))
    assert len(messages) == 1 and messages[0].startswith(IMAGE.message)


def test_kube_creates_the_review_and_reads_its_status():
    """The request kube.py sends (a mock API server at the HTTP edge: path, body, verb)."""
    seen: list[tuple[str, str, dict]] = []

    async def scenario() -> list[bool]:
        async def handle(request: aiohttp.web.Request) -> aiohttp.web.Response:
            body = await request.json()
            seen.append((request.method, request.path, body))
            allowed = body["spec"]["resourceAttributes"]["name"] == "ok"
            return aiohttp.web.json_response({**body, "status": {"allowed": allowed}}, status=201)

        app = aiohttp.web.Application()
        app.router.add_post("/apis/authorization.k8s.io/v1/subjectaccessreviews", handle)
        runner = aiohttp.web.AppRunner(app)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        configuration = kubernetes.client.Configuration()
        configuration.host = f"http://127.0.0.1:{port}"
        kube = Kube(configuration)
        try:
            rule = RULES[0]
            answers = []
            for name in ("ok", "not-ok"):
                (needed,) = requirements(rule.kind, naming(rule, name))
                answers.append(await kube.review_access(access_review(ALICE, needed)))
            return answers
        finally:
            await kube.aclose()
            await runner.cleanup()

    assert asyncio.run(scenario()) == [True, False]
    method, path, body = seen[0]
    assert (method, path) == ("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews")
    assert body["kind"] == "SubjectAccessReview" and body["spec"]["user"] == "alice"


@pytest.mark.parametrize("rule", FLAG_RULES, ids=lambda r: r.resource)
def test_serving_create_asks_for_create_on_the_kind_with_no_name(rule):
    """A create names no object yet: the review leaves `name` out (any name)."""
    obj = naming(rule, "unused")
    sar = SarTable()
    assert decide(rule.kind, obj, sar=sar) == [rule.message]
    (asked,) = sar.asked
    assert asked["spec"]["resourceAttributes"] == {
        "namespace": NAMESPACE, "verb": "create", "group": "serving.kserve.io",
        "resource": rule.resource}
    assert decide(rule.kind, obj, sar=SarTable(grant("alice", rule, ""))) == []
