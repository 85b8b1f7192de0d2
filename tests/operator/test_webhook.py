"""The operator's validating webhook, served by kopf, asked as kube-apiserver asks it: an
AdmissionReview (admission.k8s.io/v1) over HTTP; running as the chart's ServiceAccount (with
webhook.enabled's `create subjectaccessreviews`), it asks the API server (the emulator in RBAC
mode) with SubjectAccessReviews for the requester in `userInfo`."""

from __future__ import annotations

import copy
import socket
from dataclasses import replace

import pytest
import requests
from kubetune.admission.rules import RULES
from kubetune.emulator.kubeconfig import DUMMY_TOKEN
from kubetune.local.chart import OperatorRbac, find_chart_dir, operator_rbac, render_chart
from kubetune.operator.webhooks import handler_id

from ..admission.objects import NAMESPACE, naming
from .cluster import wait_for
from .conftest import OperatorControl

OPERATOR_USER = "system:serviceaccount:kubetune-system:kubetune"
SECRET_RULE = next(r for r in RULES if r.kind == "FinetuneJob" and r.field == "spec.model.secretRef")
PVC_RULE = next(r for r in RULES if r.kind == "EvalJob" and r.field == "spec.output.uri")
REF_RULE = next(r for r in RULES if r.field == "spec.model.finetuneJobRef")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture
def operator_rbac_manifests() -> OperatorRbac:
    """The chart's RBAC with the webhook on (it adds `create subjectaccessreviews`)."""
    return operator_rbac(render_chart(find_chart_dir(), {"webhook": {"enabled": True}}))


@pytest.fixture
def webhook(cluster, operator_settings, operator_kubeconfig, api):
    # alice may get exactly the objects the tests name; bob nothing. The emulator's RBAC
    # answers the operator's SubjectAccessReviews, as kube-apiserver's authorizer would.
    admin = requests.Session()
    admin.headers["Authorization"] = f"Bearer {DUMMY_TOKEN}"
    rbac = f"{cluster.url}/apis/rbac.authorization.k8s.io/v1/namespaces/{NAMESPACE}"
    role = {"metadata": {"name": "named-objects"}, "rules": [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"], "resourceNames": ["hf-token"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "verbs": ["get"],
         "resourceNames": ["reports"]},
        {"apiGroups": ["kubetune.io"], "resources": ["finetunejobs"], "verbs": ["get"],
         "resourceNames": ["router"]}]}
    binding = {"metadata": {"name": "alice-named-objects"},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                           "name": "named-objects"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User",
                             "name": "alice"}]}
    assert admin.post(f"{rbac}/roles", json=role, timeout=10).status_code == 201
    assert admin.post(f"{rbac}/rolebindings", json=binding, timeout=10).status_code == 201
    port = _free_port()
    settings = replace(operator_settings, webhook_port=port, operator_user=OPERATOR_USER)
    control = OperatorControl(settings, operator_kubeconfig, None).start()
    wait_for(lambda: _listening(port), what="the webhook server")  # after kopf's resource scan
    yield f"http://127.0.0.1:{port}"
    control.stop()


def ask(url: str, obj: dict, user: str, operation: str = "CREATE", old: dict | None = None):
    plural = {"FinetuneJob": "finetunejobs", "EvalJob": "evaljobs"}[obj["kind"]]
    review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
        "kind": {"group": "kubetune.io", "version": "v1alpha1", "kind": obj["kind"]},
        "resource": {"group": "kubetune.io", "version": "v1alpha1", "resource": plural},
        "requestKind": {"group": "kubetune.io", "version": "v1alpha1", "kind": obj["kind"]},
        "requestResource": {"group": "kubetune.io", "version": "v1alpha1", "resource": plural},
        "name": obj["metadata"]["name"], "namespace": obj["metadata"]["namespace"],
        "operation": operation, "userInfo": {"username": user, "groups": ["system:authenticated"]},
        "object": obj, "oldObject": old, "dryRun": False, "options": None}}
    reply = requests.post(f"{url}/{handler_id(plural)}", json=review, timeout=10)
    assert reply.status_code == 200, reply.text
    response = reply.json()["response"]
    assert response["uid"] == review["request"]["uid"]
    return response


@pytest.mark.parametrize(("rule", "name"), [(SECRET_RULE, "hf-token"), (PVC_RULE, "reports"),
                                            (REF_RULE, "router")],
                         ids=lambda v: getattr(v, "field", v))
def test_a_user_without_the_right_is_refused_and_one_with_it_allowed(webhook, rule, name):
    obj = naming(rule, name)
    refused = ask(webhook, obj, "bob")
    assert refused["allowed"] is False
    assert refused["status"]["code"] == 403 and refused["status"]["message"] == rule.message
    assert ask(webhook, obj, "alice")["allowed"] is True


def test_an_identity_in_the_object_changes_nothing(webhook):
    obj = naming(SECRET_RULE, "hf-token")
    obj["metadata"]["annotations"] = {"kubetune.io/created-by": "alice"}
    assert ask(webhook, obj, "bob")["allowed"] is False


def test_an_update_that_keeps_the_field_is_allowed_and_the_operator_is_exempt(webhook):
    old = naming(SECRET_RULE, "hf-token")
    new = copy.deepcopy(old)
    new["spec"]["suspend"] = True
    assert ask(webhook, new, "bob", "UPDATE", old)["allowed"] is True
    assert ask(webhook, naming(SECRET_RULE, "db-password"), OPERATOR_USER)["allowed"] is True


def test_an_image_beyond_the_allowlist_is_refused(webhook):
    obj = naming(SECRET_RULE, "hf-token")
    obj["spec"]["image"] = "docker.io/someone/miner:latest"
    refused = ask(webhook, obj, "alice")
    assert refused["allowed"] is False and "spec.image: not permitted" in refused["status"]["message"]


def test_with_a_certificate_the_webhook_is_served_over_https_only(cluster, operator_settings,
                                                                 operator_kubeconfig, api, tmp_path):
    """KUBETUNE_WEBHOOK_CERT_DIR (the chart mounts its Secret there): kopf serves HTTPS with
    that tls.crt/tls.key, which a client trusting the CA verifies."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kubetune-webhook")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    (tmp_path / "tls.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "tls.key").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption()))
    port = _free_port()
    settings = replace(operator_settings, webhook_port=port, webhook_cert_dir=str(tmp_path))
    control = OperatorControl(settings, operator_kubeconfig, None).start()
    try:
        wait_for(lambda: _listening(port), what="the webhook server")
        obj = naming(SECRET_RULE, "hf-token")
        obj["spec"]["image"] = "docker.io/someone/miner:latest"
        review = {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
            "uid": "1", "kind": {"group": "kubetune.io", "version": "v1alpha1", "kind": "FinetuneJob"},
            "resource": {"group": "kubetune.io", "version": "v1alpha1", "resource": "finetunejobs"},
            "operation": "CREATE", "userInfo": {"username": OPERATOR_USER}, "object": obj,
            "namespace": NAMESPACE, "name": "router"}}
        reply = requests.post(f"https://localhost:{port}/{handler_id('finetunejobs')}",
                              json=review, verify=str(tmp_path / "tls.crt"), timeout=10)
        assert reply.status_code == 200 and reply.json()["response"]["allowed"] is False
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(f"http://localhost:{port}/{handler_id('finetunejobs')}", json=review,
                          timeout=5)
    finally:
        control.stop()
