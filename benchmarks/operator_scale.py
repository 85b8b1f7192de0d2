"""How fast the operator turns N FinetuneJobs into Jobs, and what it costs the API server.

    python benchmarks/operator_scale.py [--jobs 200] [--watched 1000]

The API emulator, the operator (`kubetune operator`) and this client run as three processes,
as they would on a cluster. Figures, on stdout's last line as JSON:
- p50/p99 seconds from a FinetuneJob's create request to its Job appearing in a watch, and
  the same for a bare client creating Jobs directly (the floor: API server + watch latency);
- API write requests per FinetuneJob from creation until its Job exists (and the status
  that follows), by resource;
- the operator's resident memory with `--watched` FinetuneJobs.
Targets (issue 3): p99 < 2 s at N = 200, <= 6 writes per job, RSS < 250 MB at 1,000 jobs.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import kubernetes

ROOT = Path(__file__).resolve().parent.parent
NAMESPACE = "bench"
WRITES = ("POST", "PUT", "PATCH", "DELETE")


# --- the emulator process: counts write requests by resource --------------------------------

def serve_emulator(port: int) -> None:
    import asyncio

    import aiohttp.web
    from kubetune.emulator import ApiServerEmulator, EmulatorServer

    counts: Counter[str] = Counter()

    class CountingEmulator(ApiServerEmulator):
        async def __call__(self, request: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
            if request.path == "/_bench/writes":
                return aiohttp.web.json_response(dict(counts))
            if request.method in WRITES:
                counts[f"{request.method} {_resource_of(request.path)}"] += 1
            return await super().__call__(request)

    async def main() -> None:
        async with EmulatorServer(CountingEmulator(), port=port, crds=ROOT / "crds"):
            print("ready", flush=True)
            await asyncio.Event().wait()

    asyncio.run(main())


def _resource_of(path: str) -> str:
    """'/apis/batch/v1/namespaces/x/jobs/name/status' -> 'jobs/status'."""
    parts = path.strip("/").split("/")
    if "namespaces" in parts:
        parts = parts[parts.index("namespaces") + 2:]
    else:
        parts = parts[2:] if parts[0] == "api" else parts[3:]
    if len(parts) >= 3 and parts[2] == "status":
        return f"{parts[0]}/status"
    return parts[0] if parts else path


# --- the benchmark ----------------------------------------------------------------------------

def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command: list[str], env: dict[str, str], ready: str | None) -> subprocess.Popen:
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    if ready:
        for line in process.stdout:
            if ready in line:
                break
        threading.Thread(target=lambda: [None for _ in process.stdout], daemon=True).start()
    return process


class JobWatcher:
    """Records when each Job first appears in a watch (as the operator's user would see it)."""

    def __init__(self, client: kubernetes.client.ApiClient, namespace: str) -> None:
        self.seen: dict[str, float] = {}
        self._batch = kubernetes.client.BatchV1Api(client)
        self._namespace = namespace
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        watch = kubernetes.watch.Watch()
        while not self._stop.is_set():
            try:
                for event in watch.stream(self._batch.list_namespaced_job, self._namespace,
                                          timeout_seconds=5):
                    self.seen.setdefault(event["object"].metadata.name, time.monotonic())
                    if self._stop.is_set():
                        break
            except Exception:  # the server went away at the end of the run, or a hiccup
                time.sleep(0.1)

    def wait(self, names: list[str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and any(n not in self.seen for n in names):
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()


def finetune_job(name: str) -> dict:
    return {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {"model": {"uri": "file:///models/tiny"}, "dataset": {"uri": "file:///data/train.jsonl"},
                 "resources": {"gpus": 0}, "output": {"uri": "file:///out/" + name}},
    }


def bare_job(name: str) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "c", "image": "busybox", "command": ["true"]}]}}}}


def percentiles(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50": round(statistics.median(ordered), 3),
            "p99": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 3),
            "max": round(ordered[-1], 3)}


def create_all(create, docs: list[dict], sent: dict[str, float]) -> None:
    def one(doc: dict) -> None:
        sent[doc["metadata"]["name"]] = time.monotonic()
        create(doc)
    with ThreadPoolExecutor(max_workers=16) as pool:
        list(pool.map(one, docs))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def writes(url: str) -> Counter[str]:
    import urllib.request

    with urllib.request.urlopen(f"{url}/_bench/writes") as response:
        return Counter(json.load(response))


def run(jobs: int, watched: int) -> dict:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    emulator = start([sys.executable, __file__, "--serve-emulator", str(port)], env, "ready")
    operator = None
    try:
        from kubetune.emulator import write_kubeconfig

        kubeconfig = Path(tempfile.mkdtemp()) / "kubeconfig"
        write_kubeconfig(kubeconfig, url)
        client = kubernetes.config.new_client_from_config(config_file=str(kubeconfig))
        client.configuration.connection_pool_maxsize = 32
        batch = kubernetes.client.BatchV1Api(client)
        custom = kubernetes.client.CustomObjectsApi(client)
        # As on a real cluster, the namespace must exist before anything is created in it.
        kubernetes.client.CoreV1Api(client).create_namespace({"metadata": {"name": NAMESPACE}})
        watcher = JobWatcher(client, NAMESPACE)

        # The floor: a bare client creates Jobs directly.
        sent: dict[str, float] = {}
        floor_docs = [bare_job(f"floor-{i}") for i in range(jobs)]
        create_all(lambda d: batch.create_namespaced_job(NAMESPACE, d), floor_docs, sent)
        watcher.wait(list(sent), 60)
        floor = percentiles([watcher.seen[n] - sent[n] for n in sent])

        operator_env = {**env, "KUBECONFIG": str(kubeconfig), "KUBETUNE_METRICS_PORT": "0",
                        "KUBETUNE_HEALTH_PORT": "0", "KUBETUNE_PROGRESS_INTERVAL_SECONDS": "60"}
        kubetune = str(Path(sys.executable).with_name("kubetune"))
        operator = start([kubetune, "operator"], operator_env, "kubetune operator started")
        time.sleep(1.0)
        idle_rss = rss_mb(operator.pid)

        before = writes(url)
        cpu_before = cpu_seconds(operator.pid)
        sent = {}
        docs = [finetune_job(f"ftj-{i}") for i in range(jobs)]
        started = time.monotonic()
        create_all(lambda d: custom.create_namespaced_custom_object(
            "kubetune.io", "v1alpha1", NAMESPACE, "finetunejobs", d), docs, sent)
        names = [f"ftj-{i}-train" for i in range(jobs)]
        watcher.wait(names, 120)
        all_created = time.monotonic() - started
        missing = [n for n in names if n not in watcher.seen]
        latency = percentiles([watcher.seen[f"{n}-train"] - sent[n] for n in sent
                               if f"{n}-train" in watcher.seen])
        time.sleep(2.0)  # let the status writes that follow the Job land
        operator_cpu = cpu_seconds(operator.pid) - cpu_before
        delta = writes(url) - before
        delta["POST finetunejobs"] -= jobs  # the benchmark's own creates
        per_job = {k: round(v / jobs, 2) for k, v in sorted(delta.items()) if v > 0}

        more = [finetune_job(f"ftj-{i}") for i in range(jobs, watched)]
        create_all(lambda d: custom.create_namespaced_custom_object(
            "kubetune.io", "v1alpha1", NAMESPACE, "finetunejobs", d), more, {})
        watcher.wait([f"ftj-{i}-train" for i in range(watched)], 300)
        time.sleep(2.0)
        watched_rss = rss_mb(operator.pid)
        watcher.stop()
        return {
            "benchmark": "operator_scale",
            "jobs": jobs,
            "seconds_create_to_job": latency,
            "seconds_floor_bare_job": floor,
            "seconds_all_jobs_created": round(all_created, 2),
            "jobs_missing": len(missing),
            "writes_per_job": round(sum(per_job.values()), 2),
            "operator_cpu_ms_per_job": round(1000 * operator_cpu / jobs, 2),
            "writes_per_job_by_request": per_job,
            "operator_rss_mb_idle": idle_rss,
            "operator_rss_mb_watched": watched_rss,
            "watched": watched,
            "targets": {"p99_seconds": 2.0, "writes_per_job": 6, "rss_mb": 250},
            "met": {"p99": latency["p99"] < 2.0, "writes": sum(per_job.values()) <= 6,
                    "rss": watched_rss < 250},
            "conditions": {"machine": platform.machine(), "cpus": os.cpu_count(),
                           "python": platform.python_version(),
                           "processes": "emulator, operator and client in separate processes"},
        }
    finally:
        for process in (operator, emulator):
            if process is not None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--watched", type=int, default=1000)
    parser.add_argument("--serve-emulator", type=int, metavar="PORT", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator(args.serve_emulator)
        return
    print(json.dumps(run(args.jobs, max(args.watched, args.jobs))))


if __name__ == "__main__":
    main()
