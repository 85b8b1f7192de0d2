"""`kubetune plan -f MANIFEST`: the memory estimate of a FinetuneJob, without a cluster.

Wired into the `kubetune` command as:

    plan = commands.add_parser("plan", help="...")
    planner_cli.add_arguments(plan)
    plan.set_defaults(run=planner_cli.run)

Exit status 0 whether or not the job fits (the answer is in the output); 1 for bad input,
with a message naming the field.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from kubetune.planner.job import JobPlan, PlanInputError, gpu_memory_bytes, plan_finetune_job
from kubetune.planner.quantity import format_gib
from kubetune.planner.sources import ConfigSource, ConfigUnavailable

HELP = "estimate a FinetuneJob's memory per GPU and whether it fits, without a cluster"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = HELP + ". Exits 0 whether or not it fits, 1 on bad input."
    parser.add_argument(
        "-f",
        "--filename",
        required=True,
        metavar="MANIFEST",
        help="a FinetuneJob manifest (YAML or JSON), or - for standard input",
    )
    parser.add_argument(
        "--config-json",
        type=Path,
        metavar="PATH",
        help="the model's config.json (default: read from spec.model.uri)",
    )
    parser.add_argument(
        "--gpu-memory",
        metavar="QUANTITY",
        help="memory of one GPU, e.g. 80Gi (default: spec.resources.gpuMemory, else 80Gi for nvidia.com/gpu)",
    )
    parser.add_argument(
        "--runtime",
        type=Path,
        metavar="FILE",
        help="a ClusterFinetuneRuntime/FinetuneRuntime manifest file: plan the job as resolved "
        "against it (its GPUs, GPU resource name and hyperparameter defaults)",
    )
    parser.add_argument("-o", "--output", choices=["table", "json"], default="table")


def run(args: argparse.Namespace) -> int:
    try:
        plan = _plan(args)
    except PlanInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(to_json(plan), indent=2) if args.output == "json" else to_table(plan))
    return 0


def _plan(args: argparse.Namespace) -> JobPlan:
    spec = _load_spec(args.filename, getattr(args, "runtime", None))
    config = _load_config(spec, args.config_json)
    capacity = gpu_memory_bytes(spec, override=args.gpu_memory)
    return plan_finetune_job(spec, config, capacity)


def _load_spec(filename: str, runtime_file: Path | None = None):  # -> FinetuneJobSpec
    from pydantic import ValidationError

    from kubetune.api import FinetuneJobSpec

    try:
        text = sys.stdin.read() if filename == "-" else Path(filename).read_text()
    except OSError as exc:
        raise PlanInputError(filename, f"cannot be read: {exc.strerror or exc}") from exc
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        raise PlanInputError(filename, f"is not valid YAML: {exc}") from exc
    jobs = [d for d in docs if isinstance(d, dict) and d.get("kind") == "FinetuneJob"]
    if not jobs:
        raise PlanInputError(filename, "holds no FinetuneJob (kind: FinetuneJob)")
    spec = jobs[0].get("spec")
    if not isinstance(spec, dict):
        raise PlanInputError("spec", "must be a mapping")
    _check_quantities(spec)
    try:
        parsed = FinetuneJobSpec.model_validate(spec)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = "spec" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        raise PlanInputError(where, error["msg"]) from exc
    return _with_runtime(jobs[0], runtime_file) if runtime_file else parsed


def _with_runtime(doc: dict[str, Any], runtime_file: Path):  # -> FinetuneJobSpec
    """The job's spec resolved against the runtimes in `runtime_file`, as the operator would."""
    from kubetune.runtimes import RuntimeProblem, resolve_offline

    try:
        runtimes = [d for d in yaml.safe_load_all(runtime_file.read_text()) if isinstance(d, dict)]
    except OSError as exc:
        raise PlanInputError(str(runtime_file), f"cannot be read: {exc.strerror or exc}") from exc
    except yaml.YAMLError as exc:
        raise PlanInputError(str(runtime_file), f"is not valid YAML: {exc}") from exc
    try:
        return resolve_offline(doc, runtimes).spec
    except RuntimeProblem as exc:
        where, _, message = exc.problems[0].partition(": ")
        raise PlanInputError(where, f"{message} ({exc.reason})") from exc


def _check_quantities(spec: dict[str, Any]) -> None:
    """Quantity fields first, so their message says what a quantity looks like."""
    from kubetune.planner.quantity import QUANTITY_HINT, parse_quantity

    resources = spec.get("resources")
    if not isinstance(resources, dict):
        return
    for name in ("gpuMemory", "memory"):
        value = resources.get(name)
        if value is None:
            continue
        try:
            parse_quantity(value if isinstance(value, int | str) else str(value))
        except ValueError as exc:
            raise PlanInputError(f"spec.resources.{name}", QUANTITY_HINT) from exc


def _load_config(spec, path: Path | None) -> dict[str, Any]:
    source = ConfigSource()
    try:
        return source.load(str(path) if path else spec.model.uri)
    except ConfigUnavailable as exc:
        field = "--config-json" if path else "spec.model.uri"
        hint = "" if path else "; pass the model's config.json with --config-json"
        raise PlanInputError(field, f"cannot read config.json: {exc.reason}{hint}") from exc


def to_json(plan: JobPlan) -> dict[str, Any]:
    fit = plan.fit
    return {
        "plan": plan.status_plan() | {"gpuMemoryBytes": fit.capacity_bytes},
        "fits": fit.fits,
        "strategy": plan.strategy.value,
        "reason": fit.reason,
        "message": fit.message,
        "shortfallBytes": fit.shortfall_bytes,
        "items": fit.estimate.items() | {"total": fit.estimate.total},
        "alternatives": [
            {"description": a.description, "changes": a.changes, "estimatedGpuMemoryBytes": a.estimated_bytes}
            for a in fit.alternatives
        ],
        "model": {
            "family": plan.layout.arch.family,
            "task": plan.layout.task.value,
            "activeParameters": plan.layout.active_parameters,
        },
        "assumptions": {
            "method": plan.request.method.value,
            "precision": plan.request.precision.value,
            "optimizer": plan.request.optimizer.value,
            "gradientCheckpointing": plan.request.gradient_checkpointing,
            "batchSize": plan.request.batch_size,
            "seqLength": plan.request.seq_length,
            "gpus": plan.request.gpus,
            "nodes": plan.request.nodes,
            "shards": plan.request.shards,
            "cpuOffload": plan.request.offloaded,
            "parallelism": fit.note,
        },
    }


def to_table(plan: JobPlan) -> str:
    fit, req = plan.fit, plan.request
    est = fit.estimate
    lines = [
        f"model       {plan.layout.arch.family} ({plan.layout.task.value}), "
        f"{plan.layout.parameters:,} parameters, {est.trainable_parameters:,} trainable",
        f"run         {req.method.value}, {req.precision.value}, {req.optimizer.value}, "
        f"batch {req.batch_size} x {req.seq_length} tokens, gradient checkpointing "
        f"{'on' if req.gradient_checkpointing else 'off'}, {req.gpus} GPU(s) x {req.nodes} node(s)",
        f"strategy    {req.strategy.value}"
        + (f" (sharded over {req.shards} GPUs)" if req.shards > 1 else " (a full replica per GPU)")
        + (", weights, gradients and optimizer state offloaded to CPU" if req.offloaded else ""),
        "",
        f"{'ITEM':<20}{'PER GPU':>12}",
    ]
    for name, value in est.items().items():
        lines.append(f"{name:<20}{value / 2**30:>8.2f} GiB")
    lines.append(f"{'total':<20}{est.total / 2**30:>8.2f} GiB")
    lines += ["", f"{fit.reason}: {fit.message}"]
    if fit.alternatives:
        lines.append("alternatives that fit:")
        lines += [f"  - {a.description} (~{format_gib(a.estimated_bytes)})" for a in fit.alternatives]
    if fit.fits is False:
        lines.append(f"note: {fit.note}")
    return "\n".join(lines)
