"""`python -m kubetune_trainer.eval --config PATH`: evaluate a model and report how it went.

Exit codes (the operator's retry policy depends on them):
    0    evaluated (whether or not the thresholds hold: that is status.passed, not a failure)
    2    invalid input: bad config, unusable dataset, model not found; retrying cannot help
    1    anything else (retryable)

Either way a JSON summary under 4 KiB goes to the termination-message path
(env KUBETUNE_TERMINATION_LOG, default /dev/termination-log); see summary.py.
"""

from __future__ import annotations

import sys
import traceback

from .. import termination
from ..cli import configure_logging, failure, load_config, parse_args
from ..errors import EXIT_RETRYABLE, InputError
from .summary import fit


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = parse_args(argv, "kubetune_trainer.eval", __doc__, "EvalConfig")
    try:
        from kubetune.api import EvalConfig

        config = load_config(args.config, EvalConfig)
        from .recipe import evaluate  # torch is imported only once the config is good

        summary, code = evaluate(config), 0
        _track(config, summary)
    except InputError as error:
        print(f"kubetune_trainer.eval: {error.reason}: {error}", file=sys.stderr, flush=True)
        summary, code = failure(error.reason, str(error)), error.exit_code
    except Exception as error:
        traceback.print_exc()
        summary = failure("EvaluatorError", f"{type(error).__name__}: {error}")
        code = EXIT_RETRYABLE
    termination.write(fit(summary))
    return code


def _track(config, summary: dict) -> None:
    """Log the results to MLflow (spec.tracking); a failure there is a warning, not a failed
    evaluation."""
    from pathlib import Path

    from ..storage import Destination
    from ..tracking import log_evaluation
    from .report import REPORT

    report = Path(Destination(config.output_uri).local_dir()) / REPORT if config.output_uri else None
    warning = log_evaluation(config, summary, report)
    if warning:
        summary["warnings"] = [*(summary.get("warnings") or []),
                               {"reason": "TrackingFailed", "message": warning}]
