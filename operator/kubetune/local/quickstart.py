"""`kubetune quickstart`: the whole product on this machine, in a few minutes, on CPU.

Starts a local cluster, applies `examples/quickstart/` exactly as a user would with kubectl,
shows training progress from the FinetuneJob's status, and ends with the EvalJob's table:
the finetuned model against every cheap baseline (majority, TF-IDF, a linear probe on the
frozen encoder, zero-shot) on a held-out test set, with 95% bootstrap intervals, and a plain
verdict on whether it beats the strongest one significantly.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import pathlib
import shutil
import signal
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import yaml

from .cluster import LocalCluster, find_crds_dir

NAMESPACE = "default"
EXAMPLES_CLAIM = "kubetune-examples"
MODELS_CLAIM = "kubetune-models"
TIMEOUT_SECONDS = 1800  # per wait; a busy machine is slower than the 6-minute goal


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path(".kubetune/quickstart"),
                        help="where pods, claims and logs go (emptied first)")
    parser.add_argument("--manifests", type=pathlib.Path, default=None,
                        help="folder of manifests to apply (default: examples/quickstart)")


def run(args: argparse.Namespace) -> int:
    # The operator runs in a thread here; kopf's notes about that are not for this audience.
    logging.getLogger("kopf").setLevel(logging.ERROR)
    repo = find_crds_dir().parent
    manifests = args.manifests or repo / "examples" / "quickstart"
    workdir = args.workdir.resolve()
    shutil.rmtree(workdir, ignore_errors=True)  # a previous run's checkpoints would resume
    say(f"starting a local cluster in {workdir} ...")
    cluster = LocalCluster(
        workdir / "cluster", kubeconfig=workdir / "kubeconfig", hf_home=workdir / "huggingface",
        pvcs={f"{NAMESPACE}/{EXAMPLES_CLAIM}": repo / "examples",
              f"{NAMESPACE}/{MODELS_CLAIM}": None})
    with stopping_cleanly(), cluster:
        say(f"ready: KUBECONFIG={cluster.kubeconfig}")
        api = Api(cluster.kubeconfig)
        names = api.apply_folder(manifests)
        say("applied " + ", ".join(f"{kind}/{name}" for kind, name in names))
        finetune = next(name for kind, name in names if kind == "FinetuneJob")
        status = follow_training(api, finetune)
        if status.get("phase") != "Succeeded":
            return report_failure("FinetuneJob", finetune, status)
        evaluation = follow_evaluation(api, status.get("evalJobName"))
        if evaluation.get("phase") != "Succeeded":
            return report_failure("EvalJob", status.get("evalJobName"), evaluation)
        print_results(evaluation, status, cluster.workdir)
        # The pipeline worked either way; whether finetuning paid off is the verdict line
        # (and the EvalJob's Passed condition), not a failed command.
        return 0


@contextlib.contextmanager
def stopping_cleanly() -> Iterator[None]:
    """SIGTERM ends the run as Ctrl-C does: with an exception, so that the cluster's `with`
    stops the pods' process groups (which nothing else would stop: each runs in a session
    of its own, as a container would). Once the run is ending, further SIGINT/SIGTERM are
    ignored so that a second Ctrl-C cannot cut the stopping short."""
    signals = (signal.SIGINT, signal.SIGTERM)

    def end_run(signum: int, frame: object) -> None:
        for each in signals:
            signal.signal(each, signal.SIG_IGN)
        if signum == signal.SIGINT:
            raise KeyboardInterrupt
        raise SystemExit(128 + signum)

    previous = {signum: signal.getsignal(signum) for signum in signals}
    for signum in signals:
        signal.signal(signum, end_run)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class Api:
    """The few client calls a user's kubectl would make."""

    def __init__(self, kubeconfig: pathlib.Path) -> None:
        import kubernetes

        self.client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        self.custom = kubernetes.client.CustomObjectsApi(self.client)

    def apply_folder(self, folder: pathlib.Path) -> list[tuple[str, str]]:
        applied = []
        for path in sorted(folder.glob("*.yaml")):
            for doc in yaml.safe_load_all(path.read_text()):
                if doc:
                    group, version = doc["apiVersion"].split("/")
                    plural = doc["kind"].lower() + "s"
                    namespace = doc["metadata"].get("namespace", NAMESPACE)
                    self.custom.create_namespaced_custom_object(group, version, namespace,
                                                                plural, doc)
                    applied.append((doc["kind"], doc["metadata"]["name"]))
        return applied

    def status(self, kind: str, name: str) -> dict[str, Any]:
        obj = self.custom.get_namespaced_custom_object(
            "kubetune.io", "v1alpha1", NAMESPACE, kind.lower() + "s", name)
        return obj.get("status") or {}


def follow_training(api: Api, name: str) -> dict[str, Any]:
    say(f"training FinetuneJob/{name} (kubectl get ftj {name} -w shows the same)")
    bar = ProgressBar()
    status = wait(lambda: api.status("FinetuneJob", name), _finished, bar.update)
    bar.done()
    return status


def follow_evaluation(api: Api, name: str | None) -> dict[str, Any]:
    if not name:
        return {}
    say(f"evaluating EvalJob/{name} against the baselines ...")
    return wait(lambda: api.status("EvalJob", name), _finished, lambda s: None)


def _finished(status: dict[str, Any]) -> bool:
    return status.get("phase") in ("Succeeded", "Failed")


def wait(read: Callable[[], dict], done: Callable[[dict], bool],
         show: Callable[[dict], None]) -> dict[str, Any]:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    status: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status = read()
        show(status)
        if done(status):
            return status
        time.sleep(0.5)
    return status


class ProgressBar:
    """One line, redrawn in place on a terminal; a line per 10% otherwise (CI logs)."""

    WIDTH = 30

    def __init__(self) -> None:
        self.tty = sys.stdout.isatty()
        self.last_decile = -1
        self.last_line = ""

    def update(self, status: dict[str, Any]) -> None:
        progress = status.get("progress") or {}
        percent = progress.get("percent")
        if percent is None:
            line = f"  {status.get('phase') or 'Pending'}: {_condition_reason(status)}"
        else:
            filled = int(self.WIDTH * percent / 100)
            line = (f"  [{'#' * filled}{'.' * (self.WIDTH - filled)}] {percent:3d}%  "
                    f"step {progress.get('step')}/{progress.get('totalSteps')}  "
                    f"loss {_num(progress.get('trainLoss'))}  "
                    f"eval loss {_num(progress.get('evalLoss'))}  "
                    f"ETA {progress.get('etaSeconds', '?')}s")
        if line == self.last_line:
            return
        decile = (percent or 0) // 10
        if self.tty:
            print("\r" + line.ljust(100), end="", flush=True)
        elif decile != self.last_decile or percent is None:
            print(line, flush=True)
        self.last_line, self.last_decile = line, decile

    def done(self) -> None:
        if self.tty:
            print(flush=True)


def _condition_reason(status: dict[str, Any]) -> str:
    running = next((c for c in status.get("conditions", []) if c["type"] == "Running"), {})
    return running.get("reason", "waiting")


def _num(value: Any) -> str:
    return f"{value:.3f}" if isinstance(value, int | float) else "-"


def print_results(evaluation: dict[str, Any], training: dict[str, Any],
                  workdir: pathlib.Path) -> None:
    for line in training_lines(training) + result_lines(evaluation):
        print(line)
    claims = workdir / "pvcs" / NAMESPACE
    result = training.get("result") or {}
    print()
    print("Artifacts (pvc://CLAIM/PATH is the folder <workdir>/pvcs/default/CLAIM/PATH here):")
    for label, uri in (("adapter", result.get("adapterUri")), ("merged model", result.get("modelUri")),
                       ("eval report", evaluation.get("reportUri"))):
        if uri:
            print(f"  {label:<13}{uri}  ({_local_path(uri, claims)})")
    print(f"  pod logs     {workdir / 'pods' / NAMESPACE}")


def training_lines(training: dict[str, Any]) -> list[str]:
    """The FinetuneJob's training health: which step's weights were kept, and whether the
    eval metric plateaued or the model overfitted (their conditions' messages)."""
    result = training.get("result") or {}
    progress = training.get("progress") or {}
    kept = result.get("keptStep")
    lines = ["", f"Training: kept the weights of step {kept if kept is not None else '-'} of "
                 f"{progress.get('totalSteps', '-')} (the best eval loss on the held-out "
                 f"validation split, {_num(result.get('evalLoss'))}; eval accuracy "
                 f"{_num(result.get('evalAccuracy'))}); stopped early: "
                 f"{'yes' if result.get('stoppedEarly') else 'no'}"]
    for type_, none in (("Overfitting", "no overfitting seen"), ("Plateau", "no plateau")):
        condition = _condition(training, type_)
        lines.append(f"  {type_.lower()}: " + (condition.get("message", "")
                                               if condition.get("status") == "True" else none))
    return lines


SHOWN_METRICS = ("f1", "accuracy")
BASELINE_NOTES = {"chance": "untrained head: not a baseline", "majority": "most frequent label",
                  "tfidf": "TF-IDF + logistic regression", "probe": "frozen MiniLM + logistic "
                  "regression", "zero-shot": "similarity to label names"}


def _with_ci(entry: dict[str, Any] | None) -> str:
    if not entry:
        return "-"
    text = _num(entry.get("value"))
    if isinstance(entry.get("ciLow"), int | float):
        text += f" [{entry['ciLow']:.3f}, {entry['ciHigh']:.3f}]"
    return text


def result_lines(evaluation: dict[str, Any]) -> list[str]:
    """The EvalJob's status as a table: the finetune, every baseline (95% CIs), the comparison
    with the strongest baseline, the gate, calibration and leakage."""
    rows = {r["name"]: r for r in evaluation.get("results", [])}
    systems = [("finetuned MiniLM", rows)] + [
        (f"{b['name']} ({BASELINE_NOTES.get(b['name'], 'baseline')})",
         {m["name"]: m for m in b.get("metrics", [])})
        for b in evaluation.get("baselines") or []]
    width = max(len(label) for label, _ in systems) + 2  # labels are never cut short
    lines = ["", f"EvalJob results on {evaluation.get('samples')} held-out messages "
                 "(f1 is macro-F1; [95% bootstrap CI]):",
             f"  {'':<{width}}" + "".join(f"{name:<24}" for name in SHOWN_METRICS)]
    lines += [f"  {label:<{width}}" + "".join(f"{_with_ci(metrics.get(name)):<24}"
                                             for name in SHOWN_METRICS)
              for label, metrics in systems]
    for name in SHOWN_METRICS:
        row = rows.get(name)
        if row and row.get("baselineName"):
            interval = (f" [{row['deltaCiLow']:+.3f}, {row['deltaCiHigh']:+.3f}]"
                        if isinstance(row.get("deltaCiLow"), int | float) else "")
            lines.append(f"  {name} vs strongest baseline ({row['baselineName']}): delta "
                         f"{row['delta']:+.3f}{interval} (paired bootstrap)")
    passed = _condition(evaluation, "Passed")
    lines.append(f"  Passed: {passed.get('status')} ({passed.get('message', '')})")
    calibration = evaluation.get("calibration") or {}
    if calibration:
        lines.append(f"  calibration: ECE {_num(calibration.get('ece'))} (15 bins), "
                     f"Brier {_num(calibration.get('brier'))}")
    leakage = _condition(evaluation, "LeakageDetected")
    if leakage:
        lines.append(f"  leakage check: {leakage.get('message')}")
    confusion = (evaluation.get("errorAnalysis") or {}).get("confusion") or []
    if confusion:
        lines.append("  most confused: " + "; ".join(
            f"{c['label']} -> {c['predicted']} ({c['count']})" for c in confusion[:3]))
    lines.append("  " + verdict(evaluation))
    return lines


def verdict(evaluation: dict[str, Any]) -> str:
    """One plain sentence: did the finetune earn its keep on this data?"""
    f1 = next((r for r in evaluation.get("results", []) if r["name"] == "f1"), {})
    if not f1.get("baselineName"):
        return "No baseline was scored: this run cannot say whether finetuning was worth it."
    if beats_baseline(evaluation):
        return (f"Verdict: the finetuned model beats the strongest baseline ({f1['baselineName']})"
                " significantly on macro-F1.")
    return (f"Verdict: the finetuned model does NOT beat the strongest baseline "
            f"({f1['baselineName']}) significantly on macro-F1 here; on this data, "
            f"{f1['baselineName']} is as good a choice.")


def _condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def _local_path(uri: str, claims: pathlib.Path) -> pathlib.Path | str:
    if uri.startswith("pvc://"):
        return claims / uri.removeprefix("pvc://")
    return uri


def beats_baseline(evaluation: dict[str, Any]) -> bool:
    """macro-F1's paired 95% interval against the strongest baseline lies above 0."""
    f1 = next((r for r in evaluation.get("results", []) if r["name"] == "f1"), {})
    low = f1.get("deltaCiLow")
    return isinstance(low, int | float) and low > 0


def report_failure(kind: str, name: str | None, status: dict[str, Any]) -> int:
    failure = status.get("failure") or {}
    print(f"\n{kind}/{name} did not succeed: {failure.get('reason', status.get('phase'))}: "
          f"{failure.get('message', '')}\n  hint: {failure.get('hint', '')}", file=sys.stderr)
    return 1


def say(message: str) -> None:
    print(message, flush=True)
