"""Deterministic names of the objects kubetune creates, and the name limits they imply.

A restarted operator finds its children by these names, so it never creates one twice.
"""

from __future__ import annotations

import re

DNS_LABEL_MAX = 63
MAX_NODES = 256  # FinetuneJob spec.resources.nodes bound

TRAIN_SUFFIX = "-train"
CONFIG_SUFFIX = "-config"
EVAL_SUFFIX = "-eval"


def train_job_name(finetune_job: str) -> str:
    """batch/v1 Job (and headless Service) of a FinetuneJob."""
    return finetune_job + TRAIN_SUFFIX


def config_map_name(job: str) -> str:
    """ConfigMap holding the trainer's config, for a FinetuneJob or an EvalJob."""
    return job + CONFIG_SUFFIX


def eval_job_name(finetune_job: str) -> str:
    """EvalJob created from a FinetuneJob's spec.evaluation."""
    return finetune_job + EVAL_SUFFIX


def eval_run_job_name(eval_job: str) -> str:
    """batch/v1 Job of an EvalJob."""
    return eval_job + EVAL_SUFFIX


# The longest name derived from a FinetuneJob is the hostname of the last pod of an Indexed
# Job, "<name>-train-255", or the Job of its EvalJob, "<name>-eval-eval"; both must be DNS
# labels (63 characters) because they become the `job-name` label and pod hostnames.
FINETUNE_JOB_NAME_MAX = DNS_LABEL_MAX - max(
    len(TRAIN_SUFFIX) + len(f"-{MAX_NODES - 1}"), len(EVAL_SUFFIX) * 2
)
EVAL_JOB_NAME_MAX = DNS_LABEL_MAX - max(len(EVAL_SUFFIX), len(CONFIG_SUFFIX))


# Child Services and pod hostnames must be DNS-1035 labels: lowercase, starting with a letter.
_DNS_1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")


def name_problem(kind: str, name: str) -> str | None:
    """Why `name` cannot name a `kind` (its child objects' names would be invalid), or None."""
    limit = FINETUNE_JOB_NAME_MAX if kind == "FinetuneJob" else EVAL_JOB_NAME_MAX
    if not _DNS_1035_LABEL.match(name):
        return (
            "must consist of lowercase letters, digits and '-', start with a letter and end "
            f"with a letter or digit (got {name!r})"
        )
    if len(name) > limit:
        return (
            f"must be at most {limit} characters so that the names of its child objects "
            f"fit Kubernetes' 63-character limit (got {len(name)})"
        )
    return None
