"""Shared by the emulator tests: a test CRD, and a thin raw-HTTP helper around `requests`."""

from __future__ import annotations

import json
from typing import Any

import requests

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {"plural": "widgets", "singular": "widget", "kind": "Widget",
                  "shortNames": ["wd"], "categories": ["all"]},
        "versions": [{
            "name": "v1", "served": True, "storage": True,
            "subresources": {"status": {}},
            "additionalPrinterColumns": [{"name": "Size", "type": "integer",
                                          "jsonPath": ".spec.size"}],
            "schema": {"openAPIV3Schema": {"type": "object",
                                           "x-kubernetes-preserve-unknown-fields": True}},
        }],
    },
}
WIDGETS = "/apis/example.com/v1/namespaces/default/widgets"


class RawApi:
    """Thin JSON helper over `requests`, for asserting status codes and raw bodies."""

    def __init__(self, base_url: str, session: requests.Session) -> None:
        self.base_url = base_url
        self.session = session

    def get(self, path: str, **params: str) -> requests.Response:
        return self.session.get(self.base_url + path, params=params, timeout=10)

    def post(self, path: str, body: Any) -> requests.Response:
        return self.session.post(self.base_url + path, json=body, timeout=10)

    def put(self, path: str, body: Any) -> requests.Response:
        return self.session.put(self.base_url + path, json=body, timeout=10)

    def patch(self, path: str, body: Any,
              content_type: str = "application/merge-patch+json") -> requests.Response:
        return self.session.patch(self.base_url + path, data=json.dumps(body),
                                  headers={"Content-Type": content_type}, timeout=10)

    def delete(self, path: str, body: Any = None) -> requests.Response:
        return self.session.delete(self.base_url + path, json=body, timeout=10)

    def create_namespace(self, name: str) -> None:
        """Namespaces must exist before anything is created in them, as on a real cluster."""
        response = self.post("/api/v1/namespaces", {"metadata": {"name": name}})
        assert response.status_code == 201, response.text


# The smallest Pod and Job specs that kube-apiserver's validation accepts.
POD_SPEC: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
JOB_SPEC: dict[str, Any] = {"template": {"spec": {**POD_SPEC, "restartPolicy": "Never"}}}


def widget(name: str, **spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": name},
            "spec": spec}
