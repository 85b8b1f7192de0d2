"""Labels and annotations kubetune puts on (and reads from) the objects it manages."""

from __future__ import annotations

MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "kubetune"
COMPONENT = "app.kubernetes.io/component"  # trainer | evaluator
FINETUNE_JOB = "kubetune.io/finetunejob"
EVAL_JOB = "kubetune.io/evaljob"
QUEUE_NAME = "kueue.x-k8s.io/queue-name"
JOB_NAME = "batch.kubernetes.io/job-name"
COMPLETION_INDEX = "batch.kubernetes.io/job-completion-index"

ATTEMPT = "kubetune.io/attempt"
"""Annotation on a multi-node training Job: which gang attempt it runs (1, 2, ...)."""

SKIP_FIT_CHECK = "kubetune.io/skip-fit-check"
"""Annotation: "true" creates the Job even when the planner says the model does not fit."""

SPEC_DIGEST = "kubetune.io/spec-digest"
"""Annotation on a Job (and a FinetuneJob's EvalJob): digest of the spec it was built from."""

OWNER_LABEL = {"FinetuneJob": FINETUNE_JOB, "EvalJob": EVAL_JOB}
MANAGED_SELECTOR = {MANAGED_BY: MANAGED_BY_VALUE}
