"""SubjectAccessReview as kube-apiserver serves it
(https://kubernetes.io/docs/reference/access-authn-authz/authorization/#checking-api-access,
pkg/registry/authorization/subjectaccessreview/rest.go): create-only, never stored, the reply
is the request with status.allowed, for spec.user rather than the caller."""

from __future__ import annotations

from kubetune.emulator import EmulatorThread

PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


def review(user: str, name: str, verb: str = "get") -> dict:
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
            "spec": {"user": user, "groups": ["system:authenticated"], "resourceAttributes": {
                "namespace": "team-a", "verb": verb, "group": "", "resource": "secrets",
                "name": name}}}


def test_without_an_authorizer_everything_is_allowed(http):
    """The emulator's default is --authorization-mode=AlwaysAllow."""
    response = http.post(PATH, review("alice", "hf-token"))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == {"allowed": True}
    assert body["spec"]["resourceAttributes"]["name"] == "hf-token"


def test_the_authorizer_decides_for_the_user_named_in_the_review(cluster: EmulatorThread, http):
    asked = []

    def decide(subject, check):
        asked.append((subject.name, subject.groups, check))
        return (subject.name, check.verb, check.resource, check.name) == (
            "alice", "get", "secrets", "hf-token")

    cluster.call(lambda emulator: setattr(emulator, "access_decider", decide))
    assert http.post(PATH, review("alice", "hf-token")).json()["status"]["allowed"] is True
    denied = http.post(PATH, review("alice", "db-password")).json()["status"]
    assert denied["allowed"] is False and denied["reason"]
    assert http.post(PATH, review("bob", "hf-token")).json()["status"]["allowed"] is False
    assert asked[0][0] == "alice" and asked[0][2].namespace == "team-a"


def test_reviews_are_not_stored_and_cannot_be_read(http):
    http.post(PATH, review("alice", "hf-token"))
    assert http.get(PATH).status_code == 405


def test_a_review_without_attributes_or_subject_is_invalid(http):
    body = review("alice", "x")
    del body["spec"]["resourceAttributes"]
    response = http.post(PATH, body)
    assert response.status_code == 422 and "resourceAttributes" in response.json()["message"]
    body = review("", "x")
    body["spec"]["groups"] = []
    assert http.post(PATH, body).status_code == 422
