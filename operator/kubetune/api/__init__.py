"""The kubetune API (kubetune.io/v1alpha1) as pydantic models: the one source of truth for the
CRD schemas, the operator's validation and defaulting, and the trainer's config.

Pure pydantic: importing this package must never pull in kopf, kubernetes or torch, because
the trainer imports it too.
"""

from .evaljob import EvalJobSpec, EvalJobStatus
from .finetune import FinetuneJobSpec, FinetuneJobStatus
from .resources import (
    API_VERSION,
    EVAL_JOB,
    FINETUNE_JOB,
    GROUP,
    JOBS,
    RESOURCES,
    RUNTIMES,
    VERSION,
    Resource,
)
from .runtime import FinetuneRuntimeSpec, RuntimeRef
from .trainer_config import EvalConfig, TrainerConfig, eval_config_for, trainer_config_for
from .uri import ParsedUri, UriError, parse_uri

__all__ = [
    "API_VERSION",
    "EVAL_JOB",
    "FINETUNE_JOB",
    "GROUP",
    "JOBS",
    "RESOURCES",
    "RUNTIMES",
    "VERSION",
    "EvalConfig",
    "EvalJobSpec",
    "EvalJobStatus",
    "FinetuneJobSpec",
    "FinetuneJobStatus",
    "FinetuneRuntimeSpec",
    "ParsedUri",
    "Resource",
    "RuntimeRef",
    "TrainerConfig",
    "UriError",
    "eval_config_for",
    "parse_uri",
    "trainer_config_for",
]
