"""The fit check behind the ResourcesFit condition and status.plan.

It reads the model's config.json (never its weights), asks the memory planner whether the
job fits one GPU, and caches the verdict per (uid, generation): the spec sections it
depends on are immutable, so it is computed once per job, in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from typing import Any

from ..api import FinetuneJobSpec
from ..planner import (
    ConfigSource,
    ConfigUnavailable,
    PlanInputError,
    format_gib,
    gpu_memory_bytes,
    plan_finetune_job,
)
from . import conditions as c
from .settings import Settings
from .status import Fit

CACHE_SIZE = 10_000


def make_fit_checker(settings: Settings, source: ConfigSource | None = None):
    """An async `check(body, spec) -> Fit` for the operator's state."""
    source = source or ConfigSource(timeout_seconds=settings.config_fetch_timeout_seconds)
    verdicts: OrderedDict[tuple[str, Any], Fit] = OrderedDict()

    async def check(body: dict[str, Any], spec: FinetuneJobSpec) -> Fit:
        meta = body["metadata"]
        key = (meta.get("uid", meta["name"]), meta.get("generation"))
        if key not in verdicts:
            verdicts[key] = await asyncio.to_thread(fit_of, spec, settings, source)
            while len(verdicts) > CACHE_SIZE:
                verdicts.popitem(last=False)
        return verdicts[key]

    return check


def fit_of(spec: FinetuneJobSpec, settings: Settings, source: ConfigSource) -> Fit:
    """The planner's verdict; Unknown (never an error) when it cannot be computed."""
    try:
        capacity = gpu_memory_bytes(spec, settings.gpu_memory)
        # Gated or private models need a token; the operator does not read Secrets (least
        # privilege), so their fit is Unknown and the job still runs.
        config = source.load(spec.model.uri)
        plan = plan_finetune_job(spec, config, capacity)
    except ConfigUnavailable as error:
        return Fit(None, c.UNKNOWN, f"config.json unavailable: {error.reason}")
    except PlanInputError as error:
        return Fit(None, c.UNKNOWN, str(error))
    message = plan.message
    if spec.resources.gpus == 0:  # the planner compared with the pod's memory limit
        message = message.replace(" per GPU", " of the pod's memory (gpus: 0 runs on CPU)")
        if plan.fit.capacity_bytes is None:
            message = (f"runs on CPU (gpus: 0): needs ~{format_gib(plan.fit.estimate.total)} "
                       "of memory; set resources.memory to check it")
    return Fit(plan.fit.fits, plan.reason, message, plan.status_plan())
