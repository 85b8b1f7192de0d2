"""`python -m kubetune_trainer --config PATH`: run one finetuning job and report how it ended.

Exit codes (the operator's retry policy depends on them):
    0    succeeded
    2    invalid input: bad config, dataset or model; retrying cannot help
    143  stopped by SIGTERM after saving a checkpoint (retryable)
    1    anything else (retryable; the next attempt resumes from the last checkpoint)
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from . import termination
from .errors import EXIT_INTERRUPTED, EXIT_RETRYABLE, InputError, InvalidConfig

DEFAULT_CONFIG = "/etc/kubetune/config.json"
log = logging.getLogger("kubetune_trainer")


def parse_args(argv: list[str] | None, prog: str = "kubetune_trainer",
               description: str = __doc__, what: str = "TrainerConfig") -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=os.environ.get("KUBETUNE_CONFIG", DEFAULT_CONFIG),
                        help=f"{what} JSON rendered by the operator")
    return parser.parse_args(argv)


def load_config(path: str, model: type | None = None):
    """The config in `path` (a TrainerConfig unless `model` says otherwise), validated by the
    operator's own model; InvalidConfig (exit code 2) names the first bad field."""
    from kubetune.api import TrainerConfig
    from pydantic import ValidationError

    model = model or TrainerConfig
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except OSError as error:
        raise InvalidConfig(f"cannot read config {path}: {error.strerror}") from error
    try:
        return model.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "config"
        raise InvalidConfig(f"{where}: {first['msg']} ({error.error_count()} errors)") from error


def configure_logging() -> None:
    rank = os.environ.get("RANK", "0")
    logging.basicConfig(
        level=logging.INFO, stream=sys.stdout,
        format=f"%(asctime)s [rank {rank}] %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("httpx", "urllib3", "botocore", "boto3", "s3transfer", "filelock"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def failure(reason: str, message: str) -> dict:
    return {"phase": "Failed", "reason": reason, "message": message}


def main(argv: list[str] | None = None) -> int:
    configure_logging()
    args = parse_args(argv)
    recipe = None
    try:
        config = load_config(args.config)
        from .recipe import FinetuneRecipe  # torch is imported only once the config is good

        recipe = FinetuneRecipe(config)
        summary = recipe.run()
        code = 0 if summary["phase"] == "Succeeded" else EXIT_INTERRUPTED
    except InputError as error:
        # One line that says why, for `kubectl logs` and the operator's condition message.
        print(f"kubetune_trainer: {error.reason}: {error}", file=sys.stderr, flush=True)
        summary, code = failure(error.reason, str(error)), error.exit_code
    except Exception as error:
        traceback.print_exc()
        reason = "OOMKilled" if type(error).__name__ == "OutOfMemoryError" else "TrainerError"
        summary, code = failure(reason, f"{type(error).__name__}: {error}"), EXIT_RETRYABLE
    if recipe is not None and summary["phase"] == "Failed" and "step" not in summary:
        summary["step"] = recipe.step if hasattr(recipe, "step") else 0
    # Every pod writes its own termination message; rank 0's is the one that matters, but a
    # failure on another node should be visible on that node's pod too.
    if os.environ.get("LOCAL_RANK", "0") == "0":
        termination.write(summary)
    return code
