"""Errors that end a run, each with the reason that goes into the termination message.

The split matters to the operator: an input error (exit code 2) is not retried, because
running the same config again fails the same way; anything else is retryable.
"""

from __future__ import annotations

EXIT_INVALID_INPUT = 2
EXIT_RETRYABLE = 1
EXIT_INTERRUPTED = 143  # 128 + SIGTERM, what a shell reports for a terminated process


class InputError(Exception):
    """Bad input that a retry cannot fix: exit code 2."""

    reason = "InvalidInput"
    exit_code = EXIT_INVALID_INPUT


class InvalidConfig(InputError):
    """The config file is missing, unparsable or asks for something impossible here."""

    reason = "InvalidConfig"


class ModelNotFound(InputError):
    """The base model (or an adapter's base) cannot be found at its URI."""

    reason = "ModelNotFound"


class InvalidDataset(InputError):
    """The dataset is missing, unreadable, or nothing usable is left after cleaning."""

    reason = "InvalidDataset"


class Diverged(InputError):
    """The loss became NaN/inf or exploded: the same config would diverge again."""

    reason = "Diverged"


class OutputInUse(InputError):
    """output.uri holds checkpoints of another FinetuneJob (another uid): resuming them would
    continue someone else's run."""

    reason = "OutputInUse"
