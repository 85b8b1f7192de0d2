"""Chaos soak: N FinetuneJobs through their whole lifecycle (training, then the EvalJob each
creates) while the API server misbehaves and the operator is killed.

    python benchmarks/chaos_soak.py [--jobs 200] [--fault-rate 0.05] [--restarts 3] [--seed 1]

The local cluster (API emulator and executor, `kubetune.local.LocalCluster`) runs in this
process; the operator runs as `kubetune operator` in a child process, with its production
settings, and gets SIGKILL at random moments (at least `--restarts` times), each time
started again at once, as a crashed pod would be. The emulator injects faults into the
operator's requests only (`agents=kubetune+kopf`: the executor plays kubelet and the Job
controller and is not under test): `--fault-rate` of them get a 500, 503, 429 with
Retry-After, 409 on writes, 504 after committing, a watch cut mid-stream or a 410 on resume.

The pods run a stand-in for the trainer image (a mock at the edge, so the soak measures the
control plane, not training): a `kubetune_trainer` package put first on the pods'
PYTHONPATH, whose trainer serves GET /progress for a few steps and writes a termination
message with a result, and whose evaluator writes a score, as the real ones do.

Measured from the API server's own history (every stored version of every FinetuneJob,
EvalJob and Job, read as the run goes): jobs that succeeded, jobs lost (never terminal),
duplicates (an owner uid with more than one child uid of a kind: two batch/v1 Jobs for one
FinetuneJob or EvalJob, two EvalJobs for one FinetuneJob), status regressions
(`kubetune.operator.monotonic.regressions` between consecutive stored statuses), faults
injected, operator restarts, the operator's API requests per job. Targets (issue 17):
jobs_succeeded == jobs, jobs_lost == 0, duplicate_jobs == 0, status_regressions == 0.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import kubernetes

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "soak"
FINETUNE = ("kubetune.io", "finetunejobs")
EVALJOBS = ("kubetune.io", "evaljobs")
JOBS = ("batch", "jobs")
TERMINAL = ("Succeeded", "Failed")

STANDIN_TRAINER = '''
"""Stand-in for the trainer image in the chaos soak: progress over HTTP, then a result."""
import argparse, json, os, threading, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

STEPS = int(os.environ.get("SOAK_STEPS", "5"))
state = {"step": 0}

class Progress(BaseHTTPRequestHandler):
    def do_GET(self):
        body = json.dumps({"step": state["step"], "totalSteps": STEPS, "epoch": 0.0,
                           "trainLoss": round(2.0 / (1 + state["step"]), 4)}).encode()
        self.send_response(200 if self.path == "/progress" else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass

parser = argparse.ArgumentParser()
parser.add_argument("--config")
args, _ = parser.parse_known_args()
config = json.load(open(args.config))
try:  # another local cluster on this machine may hold the address: then no progress
    server = ThreadingHTTPServer((os.environ.get("POD_IP", "127.0.0.1"), 8000), Progress)
    threading.Thread(target=server.serve_forever, daemon=True).start()
except OSError:
    pass
for step in range(1, STEPS + 1):
    time.sleep(float(os.environ.get("SOAK_STEP_SECONDS", "0.4")))
    state["step"] = step
output = (config.get("output") or {}).get("uri") or "pvc://models/soak"
summary = {"phase": "Succeeded", "reason": "Completed", "message": "stand-in trainer",
           "step": STEPS, "totalSteps": STEPS,
           "result": {"adapterUri": output.rstrip("/") + "/adapter", "trainLoss": 0.4}}
with open(os.environ.get("KUBETUNE_TERMINATION_LOG", "/dev/termination-log"), "w") as f:
    f.write(json.dumps(summary))
'''

STANDIN_EVALUATOR = '''
"""Stand-in for the evaluator: a score, written as the real one writes it."""
import json, os, time

time.sleep(float(os.environ.get("SOAK_STEP_SECONDS", "0.4")))
summary = {"phase": "Succeeded", "reason": "Completed", "samples": 100,
           "results": [{"name": "accuracy", "value": 0.9, "baseline": 0.8}]}
with open(os.environ.get("KUBETUNE_TERMINATION_LOG", "/dev/termination-log"), "w") as f:
    f.write(json.dumps(summary))
'''


def finetune_job(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "model": {"uri": "pvc://models/base", "task": "causal-lm"},
            "dataset": {"uri": "pvc://data/train.jsonl"},
            "method": {"type": "lora"},
            "hyperparameters": {"epochs": 0, "maxSteps": 5},
            "resources": {"gpus": 0},
            "output": {"uri": f"pvc://models/{name}"},
            "evaluation": {"dataset": {"uri": "pvc://data/test.jsonl"}},
        },
    }


class History:
    """Reads the API server's change history as the run goes (in this process, on the
    emulator's loop) and keeps what the figures need."""

    def __init__(self, cluster: Any) -> None:
        self.cluster = cluster
        self.version = 0
        self.status: dict[str, dict[str, Any]] = {}  # FinetuneJob/EvalJob uid -> last status
        self.kind: dict[str, str] = {}  # uid -> FinetuneJob or EvalJob
        self.regressions: list[str] = []
        # owner uid (FinetuneJob or EvalJob) -> uids of the children of one kind it got
        self.children: dict[tuple[str, str], set[str]] = defaultdict(set)
        self.progress_seen: set[str] = set()  # FinetuneJobs with a progress while Running

    def poll(self) -> None:
        def read(emulator: Any) -> tuple[int, list[tuple[str, dict[str, Any]]]] | None:
            newest = emulator.store.resource_version
            events = []
            for key in (FINETUNE, EVALJOBS, JOBS):
                past = emulator.store.events_since(key, self.version)
                if past is None:
                    return None
                events += [(event.resource_version, key, event.type, copy.deepcopy(
                    {"metadata": event.new["metadata"], "status": event.new.get("status")}))
                    for event in past if event.resource_version <= newest]
            events.sort(key=lambda e: e[0])
            return newest, [(key, kind, obj) for _, key, kind, obj in events]

        answer = self.cluster.emulator.call(read)
        if answer is None:
            raise RuntimeError("the API server's history rolled over between two polls")
        self.version, events = answer
        from kubetune.operator.monotonic import regressions

        for key, kind, obj in events:
            meta = obj["metadata"]
            if kind == "ADDED":
                child = "Job" if key == JOBS else "EvalJob"
                for owner in meta.get("ownerReferences") or []:
                    self.children[(owner["uid"], child)].add(meta["uid"])
            if key == JOBS:
                continue
            status = obj.get("status") or {}
            uid = meta["uid"]
            self.kind[uid] = "FinetuneJob" if key == FINETUNE else "EvalJob"
            found = regressions(self.status.get(uid, {}), status)
            self.regressions += [f"{meta['name']}: {r}" for r in found]
            self.status[uid] = status
            if status.get("phase") == "Running" and (status.get("progress") or {}).get("step"):
                self.progress_seen.add(uid)

    def phases(self, kind: str = "FinetuneJob") -> Counter[str]:
        return Counter((s.get("phase") or "None") for uid, s in self.status.items()
                       if self.kind[uid] == kind)

    def duplicates(self) -> int:
        """Owners with more than one child of a kind: two Jobs for one FinetuneJob or
        EvalJob, or two EvalJobs for one FinetuneJob."""
        return sum(1 for uids in self.children.values() if len(uids) > 1)


class Operator:
    """`kubetune operator` in a child process, killed with SIGKILL and started again."""

    def __init__(self, kubeconfig: Path, log: Path) -> None:
        self.env = {**os.environ, "KUBECONFIG": str(kubeconfig), "KUBETUNE_METRICS_PORT": "0",
                    "KUBETUNE_HEALTH_PORT": "0", "KUBETUNE_PROGRESS_INTERVAL_SECONDS": "1",
                    "KUBETUNE_WATCH_NAMESPACES": NAMESPACE, "HF_HUB_OFFLINE": "1"}
        self.log = log.open("a")
        self.process: subprocess.Popen | None = None
        self.restarts = 0

    def start(self) -> None:
        kubetune = shutil.which("kubetune", path=str(Path(sys.executable).parent)) or "kubetune"
        self.process = subprocess.Popen([kubetune, "operator"], env=self.env, stdout=self.log,
                                        stderr=subprocess.STDOUT)

    def kill_and_restart(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def run(args: argparse.Namespace) -> dict[str, Any]:
    from kubetune.local import LocalCluster

    rng = random.Random(args.seed)
    spec = f"rate={args.fault_rate},seed={args.seed},agents=kubetune+kopf"
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="chaos-soak-") as tmp:
        tmp_path = Path(tmp)
        standin = tmp_path / "standin" / "kubetune_trainer"
        standin.mkdir(parents=True)
        (standin / "__init__.py").write_text("")
        (standin / "__main__.py").write_text(STANDIN_TRAINER)
        (standin / "eval.py").write_text(STANDIN_EVALUATOR)
        cluster = LocalCluster(
            tmp_path / "work", kubeconfig=tmp_path / "kubeconfig", operator=False,
            pvcs={f"{NAMESPACE}/models": None, f"{NAMESPACE}/data": None},
            extra_pod_env={"PYTHONPATH": str(standin.parent),
                           "SOAK_STEP_SECONDS": str(args.step_seconds)},
            faults=spec, shutdown_grace_seconds=2)
        with cluster:
            history = History(cluster)
            client = kubernetes.config.new_client_from_config(config_file=str(cluster.kubeconfig))
            custom = kubernetes.client.CustomObjectsApi(client)
            operator = Operator(cluster.kubeconfig, tmp_path / "operator.log")
            operator.start()
            started = time.monotonic()
            deadline = started + args.timeout
            names = [f"soak-{i:04d}" for i in range(args.jobs)]
            pending = list(names)
            next_kill = started + rng.uniform(3, args.kill_every)
            try:
                while time.monotonic() < deadline:
                    history.poll()
                    phases, evals = history.phases(), history.phases("EvalJob")
                    done = phases["Failed"] + evals["Succeeded"] + evals["Failed"]
                    in_flight = len(names) - len(pending) - done
                    while pending and in_flight < args.concurrency:
                        custom.create_namespaced_custom_object(
                            "kubetune.io", "v1alpha1", NAMESPACE, "finetunejobs",
                            finetune_job(pending.pop(0)))
                        in_flight += 1
                    if done == len(names) and operator.restarts >= args.restarts:
                        break
                    if time.monotonic() >= next_kill:
                        operator.kill_and_restart()
                        next_kill = time.monotonic() + rng.uniform(3, args.kill_every)
                    time.sleep(0.3)
                seconds = time.monotonic() - started
                time.sleep(1.0)  # anything still in flight after the end is recorded too
                history.poll()
            finally:
                operator.stop()
                client.close()
            injected, requests = cluster.emulator.call(
                lambda e: (dict(e.faults.injected), dict(e.faults.requests)))
    phases, evals = history.phases(), history.phases("EvalJob")
    finetune_uids = [uid for uid, kind in history.kind.items() if kind == "FinetuneJob"]
    operator_requests = requests.get("kubetune-operator", 0) + requests.get("kopf", 0)
    return {
        "benchmark": "chaos_soak",
        "jobs": args.jobs,
        "jobs_succeeded": phases["Succeeded"],
        "jobs_failed": phases["Failed"],
        "jobs_lost": args.jobs - phases["Succeeded"] - phases["Failed"],
        "evaljobs_succeeded": evals["Succeeded"],
        "evaljobs_lost": phases["Succeeded"] - evals["Succeeded"] - evals["Failed"],
        "duplicate_jobs": history.duplicates(),
        "jobs_without_a_job": sum(1 for uid in finetune_uids
                                  if not history.children.get((uid, "Job"))),
        "jobs_with_progress_while_running": len(history.progress_seen),
        "status_regressions": len(history.regressions),
        "regression_examples": history.regressions[:5],
        "faults_injected": sum(injected.values()),
        "faults_by_kind": injected,
        "operator_restarts": operator.restarts,
        "api_requests_per_job": round(operator_requests / args.jobs, 2),
        "api_requests_by_client": requests,
        "seconds": round(seconds, 1),
        "targets_met": {
            "all_succeeded": phases["Succeeded"] == args.jobs,
            "none_lost": args.jobs - phases["Succeeded"] - phases["Failed"] == 0,
            "evaluations_succeeded": evals["Succeeded"] == phases["Succeeded"],
            "no_duplicates": history.duplicates() == 0,
            "no_regressions": not history.regressions,
            "restarts": operator.restarts >= args.restarts,
        },
        "conditions": {
            "fault_spec": spec, "concurrency": args.concurrency,
            "trainer_steps": 5, "step_seconds": args.step_seconds,
            "load_average_before": [round(x, 2) for x in load_before],
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
            "cores": os.cpu_count(), "machine": platform.machine(),
            "python": platform.python_version(), "kopf": _version("kopf"),
        },
    }


def _version(package: str) -> str:
    from importlib.metadata import version

    return version(package)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--restarts", type=int, default=3, help="at least this many operator kills")
    parser.add_argument("--kill-every", type=float, default=20.0,
                        help="kills come every 3..this many seconds, at random (a restart "
                             "lists every object again: give it time to work in between)")
    parser.add_argument("--concurrency", type=int, default=40,
                        help="FinetuneJobs in flight at once (their pods are local processes)")
    parser.add_argument("--step-seconds", type=float, default=1.0,
                        help="seconds per trainer step (5 steps) and for the evaluation")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--timeout", type=float, default=1200.0)
    args = parser.parse_args()
    result = run(args)
    print(json.dumps(result))
    return 0 if all(result["targets_met"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
