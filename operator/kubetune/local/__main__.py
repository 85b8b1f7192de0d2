"""`python -m kubetune.local up ...`: the same as `kubetune local up ...`."""

from __future__ import annotations

import argparse
import sys

from kubetune.local.cli import add_arguments, run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="kubetune local", description=__doc__)
    add_arguments(parser)
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
