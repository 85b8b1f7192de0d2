"""`python -m kubetune_trainer.supervise -- accelerate launch ...`: run a multi-process
launcher as the container's main process, the way Kubernetes needs it.

- SIGTERM (suspend, preemption, eviction) is passed on to the launcher once, which passes it
  to every trainer process; each saves its part of the checkpoint before exiting.
- The launcher reports any failure as exit code 1. Kubernetes must see 2 when the trainer
  found invalid input (its podFailurePolicy then fails the Job instead of retrying), so the
  reason the trainer wrote to the termination message decides the exit code.

Imports nothing heavy: it starts in milliseconds and holds no GPU memory.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys

from .errors import EXIT_INVALID_INPUT
from .termination import termination_path

INVALID_INPUT_REASONS = frozenset({"InvalidDataset", "ModelNotFound", "InvalidConfig"})


def exit_code(launcher_code: int, summary_text: str | None) -> int:
    """The code to exit with: the launcher's, or 2 when the trainer said the input is bad."""
    if launcher_code == 0 or not summary_text:
        return launcher_code
    try:
        reason = json.loads(summary_text).get("reason")
    except (ValueError, AttributeError):
        return launcher_code
    return EXIT_INVALID_INPUT if reason in INVALID_INPUT_REASONS else launcher_code


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:
        args = args[1:]
    if not args:
        print("usage: python -m kubetune_trainer.supervise -- LAUNCHER [ARGS...]", file=sys.stderr)
        return EXIT_INVALID_INPUT
    child = subprocess.Popen(args)
    forwarded: set[int] = set()

    def forward(signum: int, _frame: object) -> None:
        if signum not in forwarded:  # a second copy would cut the launcher's clean-up short
            forwarded.add(signum)
            child.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    code = child.wait()
    try:
        with open(termination_path(), encoding="utf-8") as handle:
            summary = handle.read()
    except OSError:
        summary = None
    return exit_code(code if code >= 0 else 128 - code, summary)


if __name__ == "__main__":
    sys.exit(main())
