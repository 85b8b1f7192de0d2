"""Kubeconfig files pointing at a running emulator, for kubectl, kopf and the client.

The emulator serves plain HTTP and checks no credentials; the dummy token and
`insecure-skip-tls-verify` are there because clients expect a user and TLS settings.
"""

from __future__ import annotations

import pathlib
from typing import Any

import yaml

CONTEXT_NAME = "kubetune-emulator"
DUMMY_TOKEN = "kubetune-emulator-token"


def kubeconfig_dict(server_url: str, namespace: str = "default") -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": CONTEXT_NAME, "cluster": {
            "server": server_url, "insecure-skip-tls-verify": True}}],
        "users": [{"name": CONTEXT_NAME, "user": {"token": DUMMY_TOKEN}}],
        "contexts": [{"name": CONTEXT_NAME, "context": {
            "cluster": CONTEXT_NAME, "user": CONTEXT_NAME, "namespace": namespace}}],
        "current-context": CONTEXT_NAME,
        "preferences": {},
    }


def write_kubeconfig(path: str | pathlib.Path, server_url: str,
                     namespace: str = "default") -> pathlib.Path:
    target = pathlib.Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(kubeconfig_dict(server_url, namespace), sort_keys=False))
    return target
