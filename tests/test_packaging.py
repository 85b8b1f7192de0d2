"""Every third-party import is a declared dependency of the extra that ships it.

The operator image installs `kubetune` with no extras, the trainer image `.[trainer]`, and
`kubetune local up` needs `.[local]`; an import that only works because a test tool pulled
its package in would break one of them.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
FIRST_PARTY = {"kubetune", "kubetune_trainer"}


def _name(requirement: str) -> str:
    return re.split(r"[<>=!~\[; ]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def declared(*extras: str) -> set[str]:
    names = {_name(r) for r in PROJECT["dependencies"]}
    for extra in extras:
        names |= {_name(r) for r in PROJECT["optional-dependencies"][extra]}
    return names


def imported_distributions(folder: Path) -> dict[str, str]:
    """distribution -> a file importing it, for every third-party import under `folder`."""
    owners = packages_distributions()
    found = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in sys.stdlib_module_names or top in FIRST_PARTY:
                    continue
                # Several distributions can ship one package (mlflow and mlflow-skinny both
                # install `mlflow`): declaring any of them is enough.
                dists = " | ".join(sorted(d.lower().replace("_", "-")
                                          for d in owners.get(top, [top])))
                found.setdefault(dists, str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize(("folder", "extras"), [
    ("operator/kubetune/api", ()),
    ("operator/kubetune/operator", ()),
    ("operator/kubetune/planner", ()),
    ("operator/kubetune/emulator", ("local",)),
    ("operator/kubetune/local", ("local", "examples")),
    ("trainer-image/kubetune_trainer", ("trainer", "gpu")),
])
def test_imports_are_declared_dependencies(folder, extras):
    allowed = declared(*extras)
    missing = {dists: where for dists, where in imported_distributions(ROOT / folder).items()
               if not set(dists.split(" | ")) & allowed}
    assert not missing, f"imported but not declared for {folder} ({extras}): {missing}"
