"""Running spec.benchmarks with lm-evaluation-harness over the model the evaluator loaded.

The model is handed to lm_eval's HFLM wrapper as an object, so the evaluator's own loading
(URIs, credentials, an adapter merged into its base) is what the harness scores; lm_eval
loads nothing itself. Each benchmark runs through `lm_eval.simple_evaluate` with its own
few-shot count and limit (the first `limit` examples, so the model and its base model see
the same ones), its per-example scores kept for the bootstrap (results.py).

    suite = BenchmarkSuite(config.benchmarks, config.benchmark_data, config.generation, workdir)
    suite.prepare()                     # custom files read, offline cache set up: before any
                                        # model is loaded, so bad input fails fast
    model_scores = suite.score(loaded)  # leaf task -> TaskScores
"""

from __future__ import annotations

import functools
import logging
import time
from pathlib import Path

from ... import storage
from ...errors import InvalidConfig, InvalidDataset
from . import custom, data
from .results import MetricScores, TaskScores, benchmark_rows

log = logging.getLogger(__name__)

PROMPT_CHARS = 500  # of each prompt kept in predictions.jsonl


class BenchmarkSuite:
    def __init__(self, benchmarks, benchmark_data, generation, workdir: Path):
        self.benchmarks = list(benchmarks)
        self.data_uri = benchmark_data.uri if benchmark_data else None
        self.generation = generation
        self.workdir = workdir
        self.cache: Path | None = None
        self.custom: dict[int, dict] = {}  # benchmark index -> its task config
        self._manager = None
        self.notes: list[str] = []

    def prepare(self) -> None:
        if self.data_uri:
            self.cache = data.use_cache(self.data_uri)
            log.info("benchmarks: datasets from %s (offline)", self.data_uri)
        for index, bench in enumerate(self.benchmarks):
            if bench.uri is None:
                continue
            where = f"spec.benchmarks[{index}].uri {bench.uri}"
            try:
                path = storage.fetch(str(bench.uri))
            except storage.NotFound as error:
                raise InvalidDataset(f"{where}: nothing there ({error})") from error
            if path.is_dir():
                raise InvalidDataset(f"{where} is a folder; it must be a JSONL file")
            rows = custom.read_rows(path, where)
            self.custom[index] = custom.task_config(
                bench.label, rows, self.workdir / "custom-tasks" / str(index))
        for index, bench in enumerate(self.benchmarks):
            if bench.task is not None:
                # Loading a task loads its dataset: a missing one fails before any model loads.
                self._load(index, bench)

    def _task_manager(self):
        if self._manager is None:
            self._manager = _harness_tasks()
        return self._manager

    def _load(self, index: int, bench) -> list:
        """Fresh Task objects for one benchmark (the harness configures them per run)."""
        from lm_eval.api.task import ConfigurableTask

        if index in self.custom:
            return [ConfigurableTask(config=self.custom[index])]
        where = f"spec.benchmarks[{index}].task"
        manager = self._task_manager()
        if bench.task not in manager.task_index:
            raise InvalidConfig(f"{where}: {bench.task!r} is not a task, group or tag of "
                                f"lm-evaluation-harness {_version()}")
        try:
            loaded = manager.load(bench.task)
        except Exception as error:
            config = manager.task_index[bench.task].cfg or {}
            raise data.missing_dataset(
                bench.task, where, config.get("dataset_path"), config.get("dataset_name"),
                error, self.data_uri, self.cache) from error
        return list(loaded["tasks"].values())

    def score(self, loaded) -> dict[str, TaskScores]:
        """Every benchmark on one loaded model (a kubetune_trainer.eval.models.LoadedModel)."""
        from lm_eval import evaluator
        from lm_eval.models.huggingface import HFLM

        lm = HFLM(pretrained=loaded.model, tokenizer=loaded.tokenizer,
                  batch_size=self.generation.batch_size, max_length=loaded.max_length)
        max_new = self.generation.max_new_tokens
        if max_new >= loaded.max_length // 2:
            # The harness refuses to generate as many tokens as the model has positions.
            max_new = max(1, loaded.max_length // 2)
            note = (f"benchmarks: generation capped at {max_new} new tokens, half the "
                    f"model's {loaded.max_length} positions")
            if note not in self.notes:
                self.notes.append(note)
        out: dict[str, TaskScores] = {}
        for index, bench in enumerate(self.benchmarks):
            started = time.perf_counter()
            tasks = self._load(index, bench)
            results = evaluator.simple_evaluate(
                model=lm, tasks=tasks, num_fewshot=bench.num_fewshot, limit=bench.limit,
                bootstrap_iters=0, log_samples=True, gen_kwargs={"max_gen_toks": max_new},
                task_manager=self._manager or _empty_manager())
            seconds = time.perf_counter() - started
            for task in tasks:
                name = task.config.task
                out[name] = _task_scores(task, results, seconds / len(tasks))
            log.info("benchmark %s: %s in %.1fs", bench.label, "; ".join(
                f"{n}/{k}={m.value:.4f}" for n in (t.config.task for t in tasks)
                for k, m in out[n].metrics.items()), seconds)
        return out

    def rows(self, model: dict[str, TaskScores],
             baselines: dict[str, dict[str, TaskScores]]) -> list[dict]:
        return benchmark_rows(model, baselines)

    def records(self, model: dict[str, TaskScores],
                baselines: dict[str, dict[str, TaskScores]]) -> list[dict]:
        """One line per scored benchmark example for predictions.jsonl."""
        out = []
        for task, scores in model.items():
            for k, example in enumerate(scores.examples):
                record = {"benchmark": task, **example}
                for name, tasks in baselines.items():
                    if task in tasks and k < len(tasks[task].examples):
                        record.setdefault("baselines", {})[name] = {
                            key: value for key, value in tasks[task].examples[k].items()
                            if key not in ("docId", "prompt", "target")}
                out.append(record)
        return out


@functools.cache
def _harness_tasks():
    """The index of the harness's task YAMLs: seconds to build, so once per process (it
    builds fresh Task objects on every load)."""
    from lm_eval.tasks import TaskManager

    return TaskManager()


def _empty_manager():
    from lm_eval.tasks import TaskManager

    return TaskManager(include_defaults=False)


def _version() -> str:
    from importlib.metadata import version

    return version("lm_eval")


def _task_scores(task, results: dict, seconds: float) -> TaskScores:
    from lm_eval.api.metrics import mean

    name = task.config.task
    # Stable by doc: filters stay in the task's own order (strict-match before flexible-extract).
    samples = sorted(results["samples"][name], key=lambda s: s["doc_id"])
    reported = results["results"][name]
    aggregations = task.aggregation()
    metrics: dict[str, MetricScores] = {}
    by_doc: dict[int, dict] = {}
    doc_ids: list[int] = []
    for sample in samples:
        flt, doc_id = sample["filter"], sample["doc_id"]
        if doc_id not in by_doc:
            doc_ids.append(doc_id)
            by_doc[doc_id] = {"docId": doc_id, "prompt": _prompt(sample)[-PROMPT_CHARS:],
                              "target": str(sample.get("target"))[:PROMPT_CHARS]}
        for metric in sample.get("metrics", []):
            key = metric if flt == "none" else f"{metric},{flt}"
            value = reported.get(f"{metric},{flt}")
            if not isinstance(value, int | float):
                continue
            aggregate = aggregations[metric]
            scores = metrics.setdefault(key, MetricScores(
                value=float(value), items=[], aggregate=aggregate, is_mean=aggregate is mean))
            scores.items.append(sample[metric])
            if isinstance(sample[metric], int | float):
                by_doc[doc_id][key] = sample[metric]
        if task.get_config("output_type") == "generate_until":
            response = sample.get("filtered_resps") or [""]
            by_doc[doc_id][f"prediction,{flt}" if flt != "none" else "prediction"] = (
                str(response[0])[:PROMPT_CHARS])
    return TaskScores(task=name, num_fewshot=int(task.get_config("num_fewshot") or 0),
                      doc_ids=doc_ids, metrics=metrics, seconds=seconds,
                      examples=[by_doc[d] for d in doc_ids])


def _prompt(sample: dict) -> str:
    arguments = sample.get("arguments") or []
    first = arguments[0] if arguments else None
    if isinstance(first, list | tuple) and first:
        return str(first[0])
    return str(first or "")
