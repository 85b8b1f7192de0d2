"""Kubeconfig files pointing at a running emulator, for kubectl, kopf and the client.

The emulator serves plain HTTP. The default token is the cluster admin's (in `system:masters`,
see authorization.py); in RBAC mode other identities get their own token (`issue_token`) and
their own kubeconfig. `insecure-skip-tls-verify` is there because clients expect TLS settings.
"""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

CONTEXT_NAME = "kubetune-emulator"
DUMMY_TOKEN = "kubetune-emulator-token"


def kubeconfig_dict(server_url: str, namespace: str = "default",
                    token: str = DUMMY_TOKEN) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": {
            "server": server_url, "insecure-skip-tls-verify": True}}],
        "users": [{"name": CONTEXT_NAME, "user": {"token": token}}],
        "contexts": [{"name": CONTEXT_NAME, "context": {
            "cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": namespace}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


def write_kubeconfig(path: str | pathlib.Path, server_url: str,
                     namespace: str = "default", token: str = DUMMY_TOKEN) -> pathlib.Path:
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(kubeconfig_dict(server_url, namespace, token), sort_keys=False))
    return target
