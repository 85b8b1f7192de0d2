"""EvalJob: score a base or finetuned model on a dataset and compare it with a baseline."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from .base import SpecModel, StatusModel, cel, raise_rule_problems
from .common import (
    Condition,
    DatasetFormat,
    LocalObjectRef,
    PodResources,
    ResolvedRuntime,
    RuntimeRef,
    SecretRef,
    ShortString,
    Task,
    Tracking,
)
from .finetune import EvalDataset, Failure, Phase
from .kube_syntax import Image, QueueName
from .metrics import (
    ALL_METRICS,
    TASK_METRICS,
    ThresholdSpec,
    benchmark_threshold_problems,
    metric_problems,
)
from .uri import Uri


class EvalModel(SpecModel):
    """The model to score: a URI, or the result of a FinetuneJob in this namespace."""

    uri: Uri | None = None
    """A model folder or repo (a merged model, or an adapter folder with its base named)."""
    finetune_job_ref: LocalObjectRef | None = None
    """A FinetuneJob in the same namespace; the EvalJob waits until it succeeds."""
    task: Task | None = None
    """causal-lm or sequence-classification; taken from the FinetuneJob when referenced,
    causal-lm otherwise."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the model's location."""

    @model_validator(mode="after")
    def _exactly_one_source(self) -> EvalModel:
        if (self.uri is None) == (self.finetune_job_ref is None):
            raise ValueError("set exactly one of uri and finetuneJobRef")
        return self

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("has(self.uri) != has(self.finetuneJobRef)",
                    "set exactly one of uri and finetuneJobRef")
            ]
        }
    }


class BaselineModel(SpecModel):
    """A second model scored on the same data."""

    uri: Uri
    """The baseline model."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the baseline's location."""


BaselineName = Literal["majority", "tfidf", "probe", "zero-shot", "chance", "base"]
"""majority: the most frequent training label; tfidf: TF-IDF word 1-2-grams + logistic
regression; probe: the frozen base encoder's mean-pooled embeddings + logistic regression;
zero-shot: embedding similarity to label descriptions; chance (classification: the base model
with an untrained head) and base (causal-lm: the base model without the adapter)."""

CHEAP_BASELINES: dict[str, tuple[str, ...]] = {
    "sequence-classification": ("majority", "tfidf", "probe", "zero-shot"),
    "causal-lm": (),
}
"""The baselines that need no model of their own to be trained, by task: the default with
model.finetuneJobRef."""


class BaselineTraining(SpecModel):
    """The training data the cheap baselines are fitted on."""

    uri: Uri
    """Training set (default with finetuneJobRef: the FinetuneJob's dataset)."""
    format: DatasetFormat | None = None
    """Format of the file; detected when unset."""
    fields: dict[str, ShortString] = Field(default_factory=dict, max_length=16)
    """Column mapping."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the training set's location."""


class Generation(SpecModel):
    """Greedy generation settings for causal-lm metrics."""

    max_new_tokens: int = Field(256, ge=1, le=32_768)
    """Tokens generated per example at most."""
    batch_size: int = Field(8, ge=1, le=4096)
    """Examples generated at once."""


BENCHMARK_TASK_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$"


class Benchmark(SpecModel):
    """One benchmark: a task of EleutherAI's lm-evaluation-harness by name, or a custom
    multiple-choice task from a JSONL file (rows {question, choices, answer}) scored the
    harness's way (log-likelihood of each choice)."""

    task: str | None = Field(None, min_length=1, max_length=128,
                             pattern=BENCHMARK_TASK_PATTERN)
    """An lm-evaluation-harness task, group or tag name (arc_easy, hellaswag, gsm8k, mmlu...)."""
    uri: Uri | None = None
    """A custom task's JSONL file: one {question, choices, answer} object a line, answer the
    index of the right choice or its text."""
    format: Literal["multiple-choice"] | None = None
    """Format of the custom task's file (with uri)."""
    name: str | None = Field(None, min_length=1, max_length=48, pattern=BENCHMARK_TASK_PATTERN)
    """Name of a custom task in the results (default: the file's name without extension)."""
    num_fewshot: int | None = Field(None, ge=0, le=64)
    """Examples put in front of each question (default: the task's own, else 0)."""
    limit: int | None = Field(None, ge=1, le=10_000_000)
    """Score at most this many of the task's examples, the first ones (default: all)."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the custom task's location."""

    @model_validator(mode="after")
    def _task_or_file(self) -> Benchmark:
        problems = []
        if (self.task is None) == (self.uri is None):
            problems.append(("", "set exactly one of task and uri"))
        if self.uri is not None and self.format is None:
            problems.append(("format", "a custom task (uri) needs format: multiple-choice"))
        if self.task is not None and self.format is not None:
            problems.append(("format", "format is for a custom task (uri); a harness task "
                                       "brings its own"))
        if self.task is not None and self.name is not None:
            problems.append(("name", "name is for a custom task (uri); a harness task is "
                                     "named by task"))
        raise_rule_problems(problems)
        return self

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel("has(self.task) != has(self.uri)", "set exactly one of task and uri"),
                cel("!has(self.uri) || has(self.format)",
                    "a custom task (uri) needs format: multiple-choice", ".format"),
                cel("!has(self.task) || !has(self.format)",
                    "format is for a custom task (uri); a harness task brings its own",
                    ".format"),
                cel("!has(self.task) || !has(self.name)",
                    "name is for a custom task (uri); a harness task is named by task", ".name"),
            ]
        }
    }

    @property
    def label(self) -> str:
        """The task's name in results: the harness name, or the custom task's."""
        if self.task is not None:
            return self.task
        stem = str(self.uri).rstrip("/").rsplit("/", 1)[-1].split(".", 1)[0]
        return self.name or stem


class BenchmarkData(SpecModel):
    """Where the harness tasks' datasets come from on a cluster without the Hub."""

    uri: Uri
    """A prepared Hugging Face datasets cache folder (what HF_DATASETS_CACHE pointed at when
    the datasets were loaded on a connected machine); the tasks then load offline from it."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the cache's location."""


class EvalOutput(SpecModel):
    """Where the per-example predictions and the error-analysis report go."""

    uri: Uri
    """Folder for predictions.jsonl and report.json."""
    secret_ref: SecretRef | None = None
    """Secret with credentials for the output location."""


class EvalJobSpec(SpecModel):
    """Which model to score, on what data, with which metrics and thresholds."""

    model: EvalModel
    """The model to score."""
    baseline: BaselineModel | None = None
    """A baseline scored on the same data."""
    compare_baseline: bool | None = None
    """With finetuneJobRef: use the FinetuneJob's base model as the baseline."""
    baselines: list[BaselineName] | None = Field(None, max_length=6)
    """Baselines scored on the same data; the strongest is what the model is compared with.
    Default with finetuneJobRef: every cheap baseline of the task (classification: majority,
    tfidf, probe, zero-shot); otherwise none."""
    baseline_training: BaselineTraining | None = None
    """Where the cheap baselines are fitted (and the leakage check looks); default with
    finetuneJobRef: the FinetuneJob's training data."""
    label_descriptions: dict[str, Annotated[str, Field(max_length=1024)]] | None = Field(
        None, max_length=1000)
    """label -> a sentence describing it, for the zero-shot baseline (default: the label's
    name with _ and - read as spaces)."""
    dataset: EvalDataset
    """The evaluation set."""
    metrics: list[Literal[ALL_METRICS]] | None = Field(None, max_length=16)  # type: ignore[valid-type]
    """Metrics to compute (default: all of the task's)."""
    average: Literal["macro", "micro", "weighted"] = "macro"
    """How per-class precision, recall and F1 are averaged."""
    generation: Generation = Field(default_factory=Generation)
    """Generation settings (causal-lm)."""
    thresholds: dict[str, ThresholdSpec] = Field(default_factory=dict, max_length=16)
    """Per metric: a minimum value (maximum for loss and perplexity), or {value, beatBaseline};
    all must hold for Passed=True. A benchmark row is gated by its name, <task>/<metric>
    (arc_easy/acc: 0.6 needs at least 0.6; {beatBaseline: true} needs the model significantly
    better than its base model on it)."""
    benchmarks: list[Benchmark] | None = Field(None, max_length=16)
    """Standard benchmarks (lm-evaluation-harness tasks) and custom multiple-choice tasks,
    scored on the model and on its base model (causal-lm only); results in status.benchmarks."""
    benchmark_data: BenchmarkData | None = None
    """Offline clusters: the prepared datasets cache the harness tasks load from (default:
    the Hugging Face Hub)."""
    resources: PodResources = Field(default_factory=PodResources)
    """GPUs and placement of the evaluation pod."""
    output: EvalOutput | None = None
    """Where predictions and the report go."""
    backoff_limit: int = Field(1, ge=0, le=100)
    """Retries of a failed evaluation."""
    active_deadline_seconds: int | None = Field(None, ge=1, le=31_536_000)
    """Wall-clock limit of the evaluation Job."""
    ttl_seconds_after_finished: int = Field(604_800, ge=0, le=31_536_000)
    """Child objects are removed this long after finishing; the EvalJob stays."""
    image: Image | None = None
    """Evaluator image override (an image reference); default from the operator's configuration."""
    runtime_ref: RuntimeRef | None = None
    """Runtime template (ClusterFinetuneRuntime or FinetuneRuntime) whose image, placement, env,
    volumes and defaults apply; values set here win, except fields the runtime locks. Unset:
    the runtime marked default, if any."""
    queue_name: QueueName | None = None
    """Kueue LocalQueue, so GPU evaluations count against the same quotas as training;
    sets the kueue.x-k8s.io/queue-name label on the Job (default: the operator's default queue),
    so it must be a DNS subdomain name of at most 63 characters."""
    tracking: Tracking | None = None
    """Experiment tracking: log the evaluation's results and report to MLflow."""

    @model_validator(mode="after")
    def _cross_field_rules(self) -> EvalJobSpec:
        problems = metric_problems(self.model.task, self.metrics, self.thresholds,
                                   benchmarks=bool(self.benchmarks))
        problems += benchmark_threshold_problems(self.thresholds,
                                                 [b.label for b in self.benchmarks or ()])
        if self.compare_baseline and self.model.finetune_job_ref is None:
            problems.append(("", "compareBaseline needs model.finetuneJobRef (or set baseline.uri)"))
        if self.compare_baseline and self.baseline is not None:
            problems.append(("", "set at most one of baseline and compareBaseline"))
        task = self.model.task
        for name in self.baselines or ():
            if task == "causal-lm" and name not in ("base",):
                problems.append(("baselines", f"{name!r} is a classification baseline; "
                                              "causal-lm has only 'base'"))
            if task == "sequence-classification" and name == "base":
                problems.append(("baselines", "'base' is for causal-lm; a classifier's base "
                                              "model with an untrained head is 'chance'"))
        if self.model.uri is not None:
            problems += [("baselines", p) for p in _direct_model_baseline_problems(self)]
        if self.benchmarks and task == "sequence-classification":
            problems.append(("benchmarks", "benchmarks score a causal-lm; this model is "
                                           "sequence-classification"))
        labels = [b.label for b in self.benchmarks or ()]
        for label in sorted({x for x in labels if labels.count(x) > 1}):
            problems.append(("benchmarks", f"task {label!r} is listed twice (give a custom "
                                           "task another name)"))
        raise_rule_problems(problems)
        return self

    model_config = {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                cel(
                    "!has(self.compareBaseline) || !self.compareBaseline"
                    " || has(self.model.finetuneJobRef)",
                    "compareBaseline needs model.finetuneJobRef (or set baseline.uri)",
                ),
                cel(
                    "!(has(self.compareBaseline) && self.compareBaseline && has(self.baseline))",
                    "set at most one of baseline and compareBaseline",
                ),
                cel(
                    "!has(self.baselines) || !has(self.model.task)"
                    " || self.model.task != 'causal-lm' || self.baselines.all(b, b == 'base')",
                    "baselines of task causal-lm: only 'base'",
                    ".baselines",
                ),
                cel(
                    "!has(self.baselines) || !has(self.model.task)"
                    " || self.model.task != 'sequence-classification'"
                    " || !self.baselines.exists(b, b == 'base')",
                    "baselines: 'base' is for causal-lm; a classifier's untrained head is 'chance'",
                    ".baselines",
                ),
                cel(
                    "!has(self.baselines) || !has(self.model.uri) || has(self.baselineTraining)"
                    " || !self.baselines.exists(b, b in ['majority', 'tfidf', 'probe'])",
                    "baselines majority, tfidf and probe are fitted on training data: set "
                    "baselineTraining.uri (or use model.finetuneJobRef)",
                    ".baselines",
                ),
                cel(
                    "!has(self.baselines) || !has(self.model.uri) || has(self.baseline)"
                    " || !self.baselines.exists(b, b in ['probe', 'zero-shot', 'chance', 'base'])",
                    "baselines probe, zero-shot, chance and base need the base model: set "
                    "baseline.uri (or use model.finetuneJobRef)",
                    ".baselines",
                ),
                cel(
                    "!has(self.benchmarks) || !has(self.model.task)"
                    " || self.model.task == 'causal-lm'",
                    "benchmarks score a causal-lm; this model is sequence-classification",
                    ".benchmarks",
                ),
                *[
                    cel(
                        f"!has(self.model.task) || self.model.task != '{task}'"
                        f" || self.thresholds.all(k, k in {list(names)!r}"
                        " || (has(self.benchmarks) && k.contains('/')))",
                        f"thresholds of task {task} must be among {', '.join(names)}",
                        ".thresholds",
                    )
                    for task, names in TASK_METRICS.items()
                ],
            ]
        }
    }


def _direct_model_baseline_problems(spec: EvalJobSpec) -> list[str]:
    """With model.uri there is no FinetuneJob to take the base model and training data from."""
    names = set(spec.baselines or ())
    problems = []
    fitted = sorted(names & {"majority", "tfidf", "probe"})
    if fitted and spec.baseline_training is None:
        problems.append(f"baselines {', '.join(fitted)} are fitted on training data: set "
                        "baselineTraining.uri (or use model.finetuneJobRef)")
    embedded = sorted(names & {"probe", "zero-shot", "chance", "base"})
    if embedded and spec.baseline is None:
        problems.append(f"baselines {', '.join(embedded)} need the base model: set "
                        "baseline.uri (or use model.finetuneJobRef)")
    return problems


class ComparedValue(StatusModel):
    """A value of the model, its interval, and how it compares with a baseline's."""

    value: float
    ci_low: float | None = None
    """95% bootstrap interval of value over the examples (seeded), lower end."""
    ci_high: float | None = None
    baseline: float | None = None
    """The baseline's value: the strongest baseline's in results, the base model's in benchmarks."""
    baseline_name: str | None = Field(None, max_length=64)
    """Which baseline that is."""
    delta: float | None = None
    """value - baseline."""
    delta_ci_low: float | None = None
    """95% paired-bootstrap interval of delta, lower end (> 0: significantly better)."""
    delta_ci_high: float | None = None
    threshold: float | None = None
    passed: bool | None = None
    """Whether spec.thresholds[<name>] holds (absent: no threshold on this row)."""


class MetricResult(ComparedValue):
    """One metric of the model, and of the strongest baseline when there is one."""

    name: str = Field(max_length=64)


class BaselineMetric(StatusModel):
    name: str = Field(max_length=64)
    value: float
    ci_low: float | None = None
    ci_high: float | None = None


class BaselineResult(StatusModel):
    """One baseline's metrics on the evaluation set."""

    name: str = Field(max_length=64)
    metrics: list[BaselineMetric] = Field(
        default_factory=list, max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]})


class Calibration(StatusModel):
    """How well the model's confidence matches its accuracy (classification)."""

    ece: float | None = None
    """Expected calibration error over 15 equal-width confidence bins."""
    brier: float | None = None
    """Multi-class Brier score: mean squared error of the probability vector."""


class ConfusionPair(StatusModel):
    label: str = Field(max_length=253)
    predicted: str = Field(max_length=253)
    count: int = Field(ge=0)


class ClassScore(StatusModel):
    label: str = Field(max_length=253)
    f1: float


class ErrorAnalysis(StatusModel):
    """Where the model goes wrong; the full report is at reportUri."""

    confusion: list[ConfusionPair] = Field(default_factory=list, max_length=10)
    """The most frequent (true label, predicted label) mistakes."""
    worst_classes: list[ClassScore] = Field(default_factory=list, max_length=10)
    """Classes with the lowest F1."""


class BenchmarkResult(ComparedValue):
    """One metric of one benchmark task, on the model and on its base model."""

    name: str = Field(max_length=200)
    """<task>/<metric>, the metric as lm-evaluation-harness names it (acc, acc_norm,
    exact_match,strict-match ...)."""
    task: str = Field(max_length=128)
    metric: str = Field(max_length=64)
    num_fewshot: int | None = Field(None, ge=0)
    samples: int | None = Field(None, ge=0)
    """Examples of the task scored."""


class EvalJobStatus(StatusModel):
    """Observed state of an EvalJob; conditions are the source of truth."""

    observed_generation: int | None = Field(None, ge=0)
    phase: Phase | None = None
    conditions: list[Condition] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    job_name: str | None = Field(None, max_length=63)
    task: Task | None = None
    samples: int | None = Field(None, ge=0)
    results: list[MetricResult] = Field(
        default_factory=list,
        max_length=32,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    baselines: list[BaselineResult] = Field(
        default_factory=list,
        max_length=8,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """Every baseline's metrics (the strongest per metric is in results)."""
    benchmarks: list[BenchmarkResult] = Field(
        default_factory=list,
        max_length=64,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    """spec.benchmarks' results: one row per task and metric."""
    calibration: Calibration | None = None
    error_analysis: ErrorAnalysis | None = None
    report_uri: str | None = Field(None, max_length=2048)
    start_time: str | None = Field(None, max_length=64)
    completion_time: str | None = Field(None, max_length=64)
    failure: Failure | None = None
    gpu_seconds: float | None = Field(None, ge=0)
    """GPU-seconds the evaluation's pods used (run time x GPUs per pod), all attempts; counted
    against a ClusterFinetunePolicy gpuHourBudget."""
    runtime: ResolvedRuntime | None = None
    """The runtime this job was resolved against (unchanged by later edits of the runtime)."""
