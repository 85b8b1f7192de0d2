"""The memory planner: parameter counts and per-GPU memory from a model's config.json alone.

Pure Python, no torch: the operator imports it for the ResourcesFit condition and
status.plan (see `job.py`); `kubetune plan` (see `cli.py`) uses it without a cluster.
"""

from kubetune.planner.families import SUPPORTED_MODEL_TYPES, UnsupportedModel, build_layout
from kubetune.planner.fit import (
    DDP_NOTE,
    FSDP_NOTE,
    Alternative,
    FitResult,
    check_fit,
    check_fit_auto,
)
from kubetune.planner.job import (
    JobPlan,
    PlanInputError,
    gpu_memory_bytes,
    plan_finetune_job,
    plan_request,
)
from kubetune.planner.layout import ModelLayout, Task
from kubetune.planner.lora import UnknownTargetModules, lora_trainable_parameters
from kubetune.planner.memory import (
    MemoryEstimate,
    Method,
    Optimizer,
    PlanRequest,
    Precision,
    Strategy,
    estimate_memory,
)
from kubetune.planner.quantity import format_gib, parse_quantity
from kubetune.planner.sources import ConfigSource, ConfigUnavailable

__all__ = [
    "DDP_NOTE",
    "FSDP_NOTE",
    "SUPPORTED_MODEL_TYPES",
    "Alternative",
    "ConfigSource",
    "ConfigUnavailable",
    "FitResult",
    "JobPlan",
    "MemoryEstimate",
    "Method",
    "ModelLayout",
    "Optimizer",
    "PlanInputError",
    "PlanRequest",
    "Precision",
    "Strategy",
    "Task",
    "UnknownTargetModules",
    "UnsupportedModel",
    "build_layout",
    "check_fit",
    "check_fit_auto",
    "estimate_memory",
    "format_gib",
    "gpu_memory_bytes",
    "lora_trainable_parameters",
    "parse_quantity",
    "plan_finetune_job",
    "plan_request",
]
