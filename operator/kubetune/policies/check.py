"""`kubetune policy check`: which ClusterFinetunePolicy rules jobs break, offline, with the
same rules and messages as the operator and the chart's admission policy."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..api import EvalJobSpec, FinetuneJobSpec
from .rules import KIND, applicable, violations

SPECS = {"FinetuneJob": FinetuneJobSpec, "EvalJob": EvalJobSpec}
BUDGET_RULES = ("maxRunningJobs", "gpuHourBudget")


@dataclass(frozen=True)
class Report:
    lines: list[str]
    broken: int


def defaulted(job: dict[str, Any]) -> dict[str, Any]:
    """The job as admission sees it: with the schema's defaults (the job must be valid)."""
    return {**job, "spec": SPECS[job["kind"]].model_validate(job.get("spec") or {}).to_wire()}


def check(jobs: list[dict[str, Any]], policies: list[dict[str, Any]],
          namespace_labels: Mapping[str, str] | None) -> Report:
    """One line per broken rule (`JOB: message`), then one per job that keeps every rule;
    `namespace_labels` None applies every policy, whatever its namespaceSelector."""
    lines, broken = [], 0
    for job in jobs:
        name = (job.get("metadata") or {}).get("name", "?")
        chosen = (sorted(policies, key=lambda p: p["metadata"]["name"])
                  if namespace_labels is None else applicable(policies, namespace_labels))
        found = [v for policy in chosen for v in violations(job["kind"], defaulted(job), policy)]
        broken += len(found)
        lines += [f"{job['kind']} {name}: {v.message}" for v in found]
        if not found:
            count = f"1 {KIND}" if len(chosen) == 1 else f"{len(chosen)} ClusterFinetunePolicies"
            lines.append(f"{job['kind']} {name}: keeps the static rules of {count}")
        for policy in chosen:
            budgets = [r for r in BUDGET_RULES if (policy.get("spec") or {}).get(r) is not None]
            if budgets:
                lines.append(f"{job['kind']} {name}: note: {KIND} "
                             f"{policy['metadata']['name']} also sets {' and '.join(budgets)}: "
                             "the operator checks those when the job would start, and holds "
                             "it back rather than failing it")
    return Report(lines, broken)
