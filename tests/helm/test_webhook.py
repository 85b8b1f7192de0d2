"""webhook.enabled: the chart wires the API server to the operator's kopf webhook server."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import padding
from kubetune.operator.settings import Settings
from kubetune.operator.webhooks import handler_id

from .chart import NAMESPACE, VARIANTS, render


def test_each_kind_is_sent_to_its_kopf_handler_through_the_service():
    rendered = render(VARIANTS["webhook"])
    settings = Settings.from_env(rendered.env())
    service = next(s for s in rendered.of_kind("Service") if s["metadata"]["name"].endswith("-webhook"))
    container_ports = {p["name"]: p["containerPort"] for p in rendered.operator_container()["ports"]}
    assert settings.webhook_port == container_ports["webhook"] == 9443
    assert settings.webhook_cert_dir == "/etc/kubetune/webhook"
    (port,) = service["spec"]["ports"]
    assert port["targetPort"] == "webhook"
    config = rendered.one("ValidatingWebhookConfiguration")
    for hook, plural in zip(config["webhooks"], ("finetunejobs", "evaljobs"), strict=True):
        client = hook["clientConfig"]["service"]
        assert client == {"name": service["metadata"]["name"], "namespace": NAMESPACE,
                          "path": f"/{handler_id(plural)}", "port": port["port"]}
        (rule,) = hook["rules"]
        assert rule["resources"] == [plural] and rule["operations"] == ["CREATE", "UPDATE"]
        assert hook["failurePolicy"] == "Fail" and hook["sideEffects"] == "None"


def test_the_api_server_trusts_the_certificate_the_operator_serves():
    rendered = render(VARIANTS["webhook"])
    config = rendered.one("ValidatingWebhookConfiguration")
    secret = next(s for s in rendered.of_kind("Secret") if s["type"] == "kubernetes.io/tls")
    volume = next(v for v in rendered.deployment()["spec"]["template"]["spec"]["volumes"]
                  if v["name"] == "webhook-tls")
    assert volume["secret"]["secretName"] == secret["metadata"]["name"]
    ca = x509.load_pem_x509_certificate(base64.b64decode(config["webhooks"][0]["clientConfig"]["caBundle"]))
    cert = x509.load_pem_x509_certificate(base64.b64decode(secret["data"]["tls.crt"]))
    ca.public_key().verify(cert.signature, cert.tbs_certificate_bytes, padding.PKCS1v15(),
                           cert.signature_hash_algorithm)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert f"kubetune-webhook.{NAMESPACE}.svc" in names.get_values_for_type(x509.DNSName)


def test_off_by_default_with_no_port_and_no_sar_rights():
    rendered = render()
    assert Settings.from_env(rendered.env()).webhook_port == 0
    assert not rendered.of_kind("ValidatingWebhookConfiguration")
    assert all(not s["metadata"]["name"].endswith("-webhook") for s in rendered.of_kind("Service"))
