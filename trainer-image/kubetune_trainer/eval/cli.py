"""`python -m kubetune_trainer.eval --config PATH`: evaluate a model and report how it went.

Exit codes (the operator's retry policy depends on them):
    0    evaluated (whether or not the thresholds hold: that is status.passed, not a failure)
    2    invalid input: bad config, unusable dataset, model not found; retrying cannot help
    1    anything else (retryable)

Either way a JSON summary under 4 KiB goes to the termination-message path
(env KUBETUNE_TERMINATION_LOG, default /dev/termination-log); see summary.py.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback

from .. import termination
from ..cli import DEFAULT_CONFIG, configure_logging
from ..errors import EXIT_RETRYABLE, InputError, InvalidConfig
from .summary import fit


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kubetune_trainer.eval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.environ.get("KUBETUNE_CONFIG", DEFAULT_CONFIG),
                        help="EvalConfig JSON rendered by the operator")
    return parser.parse_args(argv)


def load_config(path: str):
    """The EvalConfig in `path`, validated by the operator's own model."""
    from kubetune.api import EvalConfig
    from pydantic import ValidationError

    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise InvalidConfig(f"cannot read config {path}: {error.strerror}") from error
    try:
        return EvalConfig.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise InvalidConfig(f"{where}: {first['msg']} ({error.error_count()} errors)") from error


def failure(reason: str, message: str) -> dict:
    return {"phase": "Failed", "reason": reason, "message": message}


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = parse_args(argv)
    try:
        config = load_config(args.config)
        from .recipe import evaluate  # torch is imported only once the config is good

        summary, code = evaluate(config), 0
    except InputError as error:
        print(f"kubetune_trainer.eval: {error.reason}: {error}", file=sys.stderr, flush=True)
        summary, code = failure(error.reason, str(error)), error.exit_code
    except Exception as error:
        traceback.print_exc()
        summary = failure("EvaluatorError", f"{type(error).__name__}: {error}")
        code = EXIT_RETRYABLE
    termination.write(fit(summary))
    return code
