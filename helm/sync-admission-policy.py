#!/usr/bin/env python3
"""Write the chart's ValidatingAdmissionPolicy template from kubetune.admission.

Run it after changing the rule table (operator/kubetune/admission/):

    python helm/sync-admission-policy.py           # rewrite the template
    python helm/sync-admission-policy.py --check   # exit 1 if it differs (tests/helm checks it)
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubetune.admission.policy import chart_template

TARGET = Path(__file__).resolve().parent / "kubetune" / "templates" / "admission-policy.yaml"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="exit 1 if the template differs from the rule table, change nothing")
    args = parser.parse_args(argv)
    current = TARGET.read_text() if TARGET.exists() else None
    if current == chart_template():
        return 0
    if args.check:
        print(f"{TARGET.relative_to(TARGET.parents[3])} is stale; "
              "run python helm/sync-admission-policy.py")
        return 1
    TARGET.write_text(chart_template())
    print(f"updated {TARGET.relative_to(TARGET.parents[3])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
