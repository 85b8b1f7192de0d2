"""Experiment tracking: TensorBoard event files always, an MLflow run when spec.tracking asks.

    tracker = Tracker.for_training(config, dest)   # rank 0 only
    tracker.start(params)                          # hyperparameters, method, data
    tracker.log_metrics({"trainLoss": 1.2}, step)  # per step; MLflow calls are batched
    tracker.log_artifact(path)                     # the model card
    tracker.close("FINISHED")

    log_evaluation(config, summary, report_path)   # an EvalJob's results, one MLflow run

TensorBoard event files go to output.uri/tensorboard/ (next to checkpoints/), written with
tensorboardX (protobuf only, no TensorFlow): `tensorboard --logdir` on a copy of the folder.

MLflow: the run is found again by the FinetuneJob's uid, so a retried or resumed attempt
continues the same run instead of starting a second one. Credentials reach the pod as the
env vars MLflow reads (MLFLOW_TRACKING_USERNAME/PASSWORD or MLFLOW_TRACKING_TOKEN, from
tracking.mlflow.secretRef); nothing here logs them. A tracking server that is down does not
fail training: the run continues and the result carries a TrackingFailed warning.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

TENSORBOARD_DIR = "tensorboard"
UID_TAG = "kubetune.io/uid"
JOB_TAG = "kubetune.io/job"
KIND_TAG = "kubetune.io/kind"
FLUSH_SECONDS = 10.0  # MLflow metrics are sent at most this often (and at evaluations, close)


def _quiet_mlflow_client():
    # A dead server should cost seconds, not MLflow's default of 7 retries x 120 s.
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
    from mlflow import MlflowClient

    return MlflowClient


class MlflowRun:
    """One MLflow run, written through the client API (no global active-run state)."""

    def __init__(self, uri: str, experiment: str, run_name: str, tags: dict[str, str],
                 resume_tag: tuple[str, str] | None = None):
        client_class = _quiet_mlflow_client()
        self.client = client_class(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        experiment_id = (found.experiment_id if found is not None
                         else self.client.create_experiment(experiment))
        existing = []
        if resume_tag is not None:
            key, value = resume_tag
            existing = self.client.search_runs(
                [experiment_id], filter_string=f"tags.`{key}` = '{value}'", max_results=1)
        if existing:
            self.run_id = existing[0].info.run_id
            self.client.update_run(self.run_id, status="RUNNING")
            log.info("tracking: continuing MLflow run %s in experiment %r", self.run_id,
                     experiment)
        else:
            self.run_id = self.client.create_run(experiment_id, run_name=run_name,
                                                 tags=tags).info.run_id
            log.info("tracking: MLflow run %s in experiment %r", self.run_id, experiment)
        self.pending: list = []

    def log_params(self, params: dict[str, object]) -> None:
        from mlflow.entities import Param

        items = [Param(key, str(value)[:6000]) for key, value in params.items()]
        existing = self.client.get_run(self.run_id).data.params
        # A resumed run has them already; MLflow refuses to change a logged param.
        items = [p for p in items if p.key not in existing]
        for start in range(0, len(items), 100):  # log_batch takes at most 100 params
            self.client.log_batch(self.run_id, params=items[start:start + 100])

    def add_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        self.pending += [Metric(key, float(value), now, step) for key, value in metrics.items()]

    def flush(self) -> None:
        while self.pending:
            batch, self.pending = self.pending[:1000], self.pending[1000:]
            self.client.log_batch(self.run_id, metrics=batch)

    def log_artifact(self, path: Path) -> None:
        self.client.log_artifact(self.run_id, str(path))

    def set_tags(self, tags: dict[str, str]) -> None:
        for key, value in tags.items():
            self.client.set_tag(self.run_id, key, value)

    def end(self, status: str) -> None:
        self.flush()
        self.client.set_terminated(self.run_id, status=status)


class Tracker:
    """TensorBoard and (optionally) MLflow for a training run; every method is safe to call
    when MLflow is off or failed."""

    def __init__(self, tensorboard_dir: Path | None, mlflow: dict | None):
        self.tensorboard_dir = tensorboard_dir
        self.writer = None
        self.mlflow_settings = mlflow
        self.mlflow: MlflowRun | None = None
        self.warning: str | None = None
        self.last_flush = time.monotonic()

    @classmethod
    def for_training(cls, config, dest) -> Tracker:
        settings = None
        mlflow = config.tracking.mlflow if config.tracking else None
        if mlflow is not None:
            tags = {UID_TAG: config.job_uid or "", JOB_TAG: f"{config.namespace}/{config.job_name}",
                    KIND_TAG: "FinetuneJob"}
            settings = {"uri": mlflow.uri, "experiment": mlflow.experiment,
                        "run_name": config.job_name, "tags": tags,
                        "resume_tag": (UID_TAG, config.job_uid) if config.job_uid else None}
        return cls(dest.local_dir(TENSORBOARD_DIR), settings)

    def start(self, params: dict[str, object]) -> None:
        if self.tensorboard_dir is not None:
            from tensorboardX import SummaryWriter

            self.writer = SummaryWriter(logdir=str(self.tensorboard_dir), flush_secs=30)
            self.writer.add_text("params", "\n".join(f"    {k}: {v}" for k, v in params.items()))
        if self.mlflow_settings is not None:
            self._guard("start", lambda: self._start_mlflow(params))

    def _start_mlflow(self, params: dict[str, object]) -> None:
        self.mlflow = MlflowRun(**self.mlflow_settings)
        self.mlflow.log_params(params)

    def log_metrics(self, metrics: dict[str, float | None], step: int, flush: bool = False) -> None:
        values = {k: v for k, v in metrics.items() if v is not None}
        if self.writer is not None:
            for key, value in values.items():
                self.writer.add_scalar(key, value, step)
        if self.mlflow is not None:
            self.mlflow.add_metrics(values, step)
            if flush or time.monotonic() - self.last_flush > FLUSH_SECONDS:
                self.last_flush = time.monotonic()
                self._guard("log metrics", self.mlflow.flush)

    def log_artifact(self, path: Path) -> None:
        if self.mlflow is not None:
            self._guard("log artifact", lambda: self.mlflow.log_artifact(path))

    def set_tags(self, tags: dict[str, str]) -> None:
        if self.mlflow is not None:
            self._guard("set tags", lambda: self.mlflow.set_tags(tags))

    def close(self, status: str = "FINISHED") -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None
        if self.mlflow is not None:
            self._guard("end run", lambda: self.mlflow.end(status))
            self.mlflow = None

    def _guard(self, what: str, action) -> None:
        """Tracking must not fail the run: the first error becomes a warning, MLflow is off."""
        try:
            action()
        except Exception as error:  # any client or server error
            message = f"MLflow {what} failed, tracking is off for this run: " \
                f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
            log.warning("tracking: %s", message)
            self.warning = self.warning or message
            self.mlflow = None


def log_evaluation(config, summary: dict, report_path: Path | None) -> str | None:
    """An EvalJob's results as one MLflow run (when config.tracking.mlflow is set): the
    metrics with their confidence intervals, baseline and delta, passed as a tag, report.json
    as an artifact. Returns a warning message when MLflow failed, else None."""
    mlflow = config.tracking.mlflow if config.tracking else None
    if mlflow is None or summary.get("phase") != "Succeeded":
        return None
    tags = {JOB_TAG: f"{config.namespace}/{config.job_name}", KIND_TAG: "EvalJob"}
    tracker = Tracker(None, {"uri": mlflow.uri, "experiment": mlflow.experiment,
                             "run_name": config.job_name, "tags": tags})
    tracker.start({"model": config.model.uri, "dataset": config.dataset.uri,
                   "task": config.task, "metrics": ",".join(config.metrics),
                   "samples": summary.get("samples")})
    metrics: dict[str, float | None] = {}
    for row in summary.get("results") or []:
        name = row["name"]
        for key, suffix in (("value", ""), ("ciLow", ".ciLow"), ("ciHigh", ".ciHigh"),
                            ("baseline", ".baseline"), ("delta", ".delta")):
            metrics[f"{name}{suffix}"] = row.get(key)
    tracker.log_metrics(metrics, step=0, flush=True)
    if summary.get("passed") is not None:
        tracker.set_tags({"kubetune.io/passed": str(summary["passed"]).lower()})
    if report_path is not None and report_path.exists():
        tracker.log_artifact(report_path)
    tracker.close()
    return tracker.warning
