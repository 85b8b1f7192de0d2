"""The operator's validating admission webhook: defence in depth where the chart's
ValidatingAdmissionPolicy is off (chart value webhook.enabled; KUBETUNE_WEBHOOK_PORT).

kopf serves it (`kopf.WebhookServer`, with the certificate the chart mounts); the chart renders
the ValidatingWebhookConfiguration and Service, so the operator needs no rights on webhook
configurations. Each handler is thin: the decision is `admission.review.refusals`, the
SubjectAccessReviews go through kube.py.
"""

from __future__ import annotations

import copy
import os
from typing import Any

import kopf

from ..admission.review import refusals
from ..api.resources import GROUP, JOBS, VERSION
from .settings import Settings


def handler_id(plural: str) -> str:
    """The webhook's id, which is also its URL path on kopf's server (`/<id>`)."""
    return f"validate-{plural}"


def with_webhooks(base: kopf.OperatorRegistry) -> kopf.OperatorRegistry:
    """A copy of `base` with the validating handlers: kopf refuses to start with admission
    handlers and no server, so they exist only in operators that serve them."""
    registry = copy.deepcopy(base)
    for resource in JOBS.values():
        kopf.on.validate(GROUP, VERSION, resource.plural, id=handler_id(resource.plural),
                         operations=["CREATE", "UPDATE"], registry=registry)(
            _validator(resource.kind))
    return registry


def _validator(kind: str):
    async def validate(body: kopf.Body, old: Any, operation: str, userinfo: dict[str, Any],
                       memo: kopf.Memo, **_: Any) -> None:
        state = memo.get("state")
        if state is None:
            raise kopf.AdmissionError("the kubetune operator is starting; try again", code=503)
        settings: Settings = state.settings
        previous = copy.deepcopy(dict(old)) if operation == "UPDATE" and old else None
        messages = await refusals(kind, copy.deepcopy(dict(body)), previous, userinfo,
                                  state.kube.review_access, settings.placement_policy,
                                  (settings.operator_user,) if settings.operator_user else ())
        if messages:
            raise kopf.AdmissionError("; ".join(messages), code=403)
    validate.__name__ = f"validate_{kind.lower()}"
    return validate


def webhook_server(settings: Settings) -> kopf.WebhookServer:
    """kopf's HTTPS server with the chart's certificate (plain HTTP without one: tests)."""
    if settings.webhook_cert_dir:
        return kopf.WebhookServer(
            addr="0.0.0.0", port=settings.webhook_port,
            certfile=os.path.join(settings.webhook_cert_dir, "tls.crt"),
            pkeyfile=os.path.join(settings.webhook_cert_dir, "tls.key"))
    return kopf.WebhookServer(addr="127.0.0.1", port=settings.webhook_port, insecure=True)
