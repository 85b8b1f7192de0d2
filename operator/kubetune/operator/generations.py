"""Which generation of a spec the children really carry: status.observedGeneration.

A job's children are built from its spec once; afterwards the operator carries only a few
fields to them (`suspend` to the Job, `evaluation` until the EvalJob exists, an EvalJob's
`thresholds` into its verdict). A change to any other field after the Job exists reaches no
running pod, so the status must not claim that generation as observed (Kubernetes API
conventions: observedGeneration is the generation the controller has acted on). Each Job
records a digest of the spec it was built from; the status reports the new generation only
while the current spec still has that digest.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from .labels import SPEC_DIGEST

FINETUNE_APPLIED_LATER = ("suspend", "evaluation")
EVAL_APPLIED_LATER = ("thresholds",)


def digest(spec_wire: dict[str, Any], leave_out: tuple[str, ...] = ()) -> str:
    """A short digest of the spec sections a child is built from."""
    kept = {k: v for k, v in spec_wire.items() if k not in leave_out}
    text = json.dumps(kept, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def carries(child: dict[str, Any] | None, spec_wire: dict[str, Any],
            leave_out: tuple[str, ...] = ()) -> bool:
    """Whether the child was built from this spec (a child without a digest, made by an
    older operator, is taken to carry it)."""
    if child is None:
        return True
    recorded = ((child.get("metadata") or {}).get("annotations") or {}).get(SPEC_DIGEST)
    return recorded is None or recorded == digest(spec_wire, leave_out)


def observed_generation(generation: int | None, old: dict[str, Any], applied: bool) -> int | None:
    """The generation to report: this one when its changes reached the children, else the
    one reported before."""
    return generation if applied else old.get("observedGeneration")
