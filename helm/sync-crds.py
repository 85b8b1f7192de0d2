#!/usr/bin/env python3
"""Copy the generated CRDs (crds/*.yaml) into the Helm chart (helm/kubetune/templates/crd/).

Run it after `make crds`:

    python helm/sync-crds.py           # rewrite the chart's copies
    python helm/sync-crds.py --check   # exit 1 if they differ (tests/helm checks the same)

Each copy is the CRD unchanged, wrapped in `{{- if .Values.crds.enabled }}` and given the
`helm.sh/resource-policy: keep` annotation when `crds.keep` is on. The CRDs live in
templates/ rather than the chart's crds/ folder so that `helm upgrade` updates them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
SOURCE_DIR = REPO_ROOT / "crds"
CHART_CRD_DIR = REPO_ROOT / "helm" / "kubetune" / "templates" / "crd"

GUARD_OPEN = "{{- if .Values.crds.enabled }}\n"
GUARD_CLOSE = "{{- end }}\n"
KEEP_ANNOTATION = (
    "  {{- if .Values.crds.keep }}\n"
    "  annotations:\n"
    "    helm.sh/resource-policy: keep\n"
    "  {{- end }}\n"
)


def crd_template(source_name: str, text: str) -> str:
    """The chart template for one generated CRD file."""
    # Go templates would read `{{` in a description as an action; print it literally.
    text = text.replace("{{", '{{ "{{" }}')
    if not text.endswith("\n"):
        text += "\n"
    head, sep, tail = text.partition("\nmetadata:\n")
    if not sep:
        raise ValueError(f"crds/{source_name}: no top-level metadata: line")
    return (
        GUARD_OPEN
        + f"# Copied from crds/{source_name} by helm/sync-crds.py; do not edit.\n"
        + head + sep + KEEP_ANNOTATION + tail
        + GUARD_CLOSE
    )


def expected_templates() -> dict[str, str]:
    """File name -> template text, for every CRD in crds/."""
    return {
        path.name: crd_template(path.name, path.read_text())
        for path in sorted(SOURCE_DIR.glob("*.yaml"))
    }


def differences() -> list[str]:
    """Names of chart CRD templates that are missing, stale, or have no source."""
    expected = expected_templates()
    present = {path.name: path.read_text() for path in CHART_CRD_DIR.glob("*.yaml")}
    return sorted(
        name for name in expected.keys() | present.keys()
        if expected.get(name) != present.get(name)
    )


def sync() -> list[str]:
    """Rewrite the chart's CRD templates; returns the names changed."""
    changed = differences()
    CHART_CRD_DIR.mkdir(parents=True, exist_ok=True)
    expected = expected_templates()
    for name in changed:
        target = CHART_CRD_DIR / name
        if name in expected:
            target.write_text(expected[name])
        else:
            target.unlink()
    return changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the chart's CRDs differ from crds/, change nothing")
    args = parser.parse_args(argv)
    if args.check:
        stale = differences()
        for name in stale:
            print(f"helm/kubetune/templates/crd/{name} differs from crds/; "
                  "run python helm/sync-crds.py")
        return 1 if stale else 0
    for name in sync():
        print(f"updated helm/kubetune/templates/crd/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
