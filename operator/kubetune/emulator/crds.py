"""Reading CustomResourceDefinitions from YAML files (the project's `crds/` folder)."""

from __future__ import annotations

import pathlib
from typing import Any

import yaml


def read_crd_documents(source: str | pathlib.Path) -> list[dict[str, Any]]:
    """Every CRD in a YAML file, or in the `*.yaml`/`*.yml` files of a folder (sorted)."""
    path = pathlib.Path(source)
    files = sorted([*path.glob("*.yaml"), *path.glob("*.yml")]) if path.is_dir() else [path]
    crds: list[dict[str, Any]] = []
    for file in files:
        for document in yaml.safe_load_all(file.read_text()):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    return crds
