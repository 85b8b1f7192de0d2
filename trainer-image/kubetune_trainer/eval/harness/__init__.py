"""spec.benchmarks: tasks of EleutherAI's lm-evaluation-harness (the `lm_eval` package) and
custom multiple-choice tasks, scored on the loaded model and its base model, compared with the
same paired bootstrap as the rest of the evaluation.

- data.py      the prepared datasets cache of offline clusters, and the error naming a
               dataset it lacks
- custom.py    a {question, choices, answer} JSONL file as an lm_eval task config
- run.py       lm_eval's HFLM over the already-loaded model; per-example scores per metric
- results.py   per-example scores -> status rows with intervals and deltas
"""

from .run import BenchmarkSuite

__all__ = ["BenchmarkSuite"]
