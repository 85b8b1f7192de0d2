"""KServe's CRDs (a minimal offline stand-in, see tests/fixtures/kserve/crds.yaml) installed
in the emulator, and a strict create of a manifest against them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import requests
import yaml

CRD_FILE = Path(__file__).resolve().parents[1] / "fixtures" / "kserve" / "crds.yaml"
CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
PLURALS = {"InferenceService": "inferenceservices", "LLMInferenceService": "llminferenceservices"}


def install_kserve_crds(base_url: str) -> None:
    for crd in yaml.safe_load_all(CRD_FILE.read_text()):
        response = requests.post(base_url + CRDS, json=crd, timeout=10)
        assert response.status_code == 201, response.text


def create_strictly(base_url: str, manifest: dict[str, Any]) -> requests.Response:
    """POST as `kubectl apply --validate=strict` does: an unknown field is an error, not
    silently pruned (fieldValidation=Strict)."""
    namespace = manifest["metadata"].get("namespace", "default")
    path = (f"/apis/{manifest['apiVersion']}/namespaces/{namespace}/"
            f"{PLURALS[manifest['kind']]}")
    return requests.post(base_url + path, json=manifest, params={"fieldValidation": "Strict"},
                         timeout=10)
