"""How fast the operator turns N FinetuneJobs into Jobs, next to a minimal kopf operator.

    python benchmarks/operator_scale.py [--sizes 200,1000] [--repeats 3] [--smoke]

The API emulator, the operator and this client run as three processes, as they would on a
cluster, against a fresh emulator for every run. Two operators take turns (interleaved, the
one that goes first alternating, `--repeats` times at each size):
- kubetune (`kubetune operator`), the model URI pointing at a real config.json
  (TinyLlama-1.1B's) so that its fit check reads and plans the model inside the timed path;
- the reference: a one-handler kopf operator that creates an owned Job per FinetuneJob, what
  a user would write instead (`serve_reference_operator`).
Figures, on stdout's last line as JSON: `p99_ratio_vs_reference_operator` (kubetune's median
p99 seconds from create request to Job seen in a watch / the reference's, N = 200) and
`p99_ratio_vs_reference_operator_1000` (N = 1,000), each size's p50/p99 with min and max, a
bare client creating Jobs (the floor), API writes per FinetuneJob, the operator's CPU per job
and resident memory with the largest N watched, the load average before and after, cores.
Targets (issue 14): ratio <= 2.0 at 200 and <= 2.5 at 1,000; (issue 3) <= 6 writes per job,
RSS < 250 MB at 1,000 jobs.
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


def finetune_job(name: str, namespace: str, model_uri: str) -> dict:
    return {
        "apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": {"uri": model_uri}, "dataset": {"uri": "file:///data/train.jsonl"},
                 "resources": {"gpus": 0, "memory": "128Gi"}, "output": {"uri": "file:///out/" + name}},
    }


def bare_job(name: str, namespace: str = NAMESPACE) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "namespace": namespace},
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


# --- the reference operator: what a user would write instead ---------------------------------

def serve_reference_operator() -> None:
    """A minimal one-handler kopf operator: a Job per FinetuneJob, owned by it (kopf.adopt),
    created with the official client; kopf's defaults otherwise. Run as its own process."""
    import kopf

    kubernetes.config.load_kube_config()
    batch = kubernetes.client.BatchV1Api()

    @kopf.on.startup()
    def started(logger, **_):
        print("reference operator started", flush=True)

    @kopf.on.create("kubetune.io", "v1alpha1", "finetunejobs")
    def create_job(body, name, namespace, **_):
        job = bare_job(f"{name}-train", namespace)
        kopf.adopt(job, owner=body)
        batch.create_namespaced_job(namespace, job)

    kopf.run(clusterwide=True, standalone=True)


# --- the benchmark ----------------------------------------------------------------------------

# A real published config.json (TinyLlama-1.1B), so the operator's fit check reads and plans it.
MODEL_CONFIG = {
    "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": 2048,
    "intermediate_size": 5632, "num_attention_heads": 32, "num_hidden_layers": 22,
    "num_key_value_heads": 4, "max_position_embeddings": 2048, "rms_norm_eps": 1e-05,
    "vocab_size": 32000, "tie_word_embeddings": False, "torch_dtype": "float32",
    "hidden_act": "silu", "bos_token_id": 1, "eos_token_id": 2, "rope_theta": 10000.0,
}  # fmt: skip


def run_once(side: str, jobs: int, model_uri: str, measure_floor: bool) -> dict:
    """One side at one size, against a fresh emulator: creation-to-Job latencies and costs."""
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
        result: dict = {"side": side, "jobs": jobs}

        if measure_floor:  # a bare client creating Jobs directly: API server + watch latency
            sent: dict[str, float] = {}
            create_all(lambda d: batch.create_namespaced_job(NAMESPACE, d),
                       [bare_job(f"floor-{i}") for i in range(jobs)], sent)
            watcher.wait(list(sent), 60)
            result["floor"] = percentiles([watcher.seen[n] - sent[n] for n in sent])

        operator_env = {**env, "KUBECONFIG": str(kubeconfig), "KUBETUNE_METRICS_PORT": "0",
                        "KUBETUNE_HEALTH_PORT": "0", "KUBETUNE_PROGRESS_INTERVAL_SECONDS": "60"}
        if side == "kubetune":
            kubetune = str(Path(sys.executable).with_name("kubetune"))
            operator = start([kubetune, "operator"], operator_env, "kubetune operator started")
        else:
            operator = start([sys.executable, __file__, "--serve-reference-operator"],
                             operator_env, "reference operator started")
        time.sleep(1.0)  # both: let the watches open
        idle_rss = rss_mb(operator.pid)
        before = writes(url)
        cpu_before = cpu_seconds(operator.pid)
        sent = {}
        create_all(lambda d: custom.create_namespaced_custom_object(
            "kubetune.io", "v1alpha1", NAMESPACE, "finetunejobs", d),
            [finetune_job(f"ftj-{i}", NAMESPACE, model_uri) for i in range(jobs)], sent)
        started = time.monotonic()
        names = [f"ftj-{i}-train" for i in range(jobs)]
        watcher.wait(names, 300)
        all_created = time.monotonic() - started
        result["latency"] = percentiles([watcher.seen[f"{n}-train"] - sent[n] for n in sent
                                         if f"{n}-train" in watcher.seen])
        result["missing"] = sum(n not in watcher.seen for n in names)
        time.sleep(2.0)  # let the status writes that follow the Job land
        result["cpu_ms_per_job"] = round(1000 * (cpu_seconds(operator.pid) - cpu_before) / jobs, 2)
        delta = writes(url) - before
        delta["POST finetunejobs"] -= jobs  # the benchmark's own creates
        result["writes_by_request"] = {k: round(v / jobs, 2) for k, v in sorted(delta.items())
                                       if v > 0}
        result["writes_per_job"] = round(sum(result["writes_by_request"].values()), 2)
        result["rss_mb_idle"], result["rss_mb_watched"] = idle_rss, rss_mb(operator.pid)
        result["seconds_all_jobs_created"] = round(all_created, 2)
        watcher.stop()
        return result
    finally:
        for process in (operator, emulator):
            if process is not None:
                process.terminate()
                try:
                    process.wait(10)
                except subprocess.TimeoutExpired:
                    process.kill()


def summarise(runs: list[dict], key: str) -> dict:
    values = [r["latency"][key] for r in runs]
    return {"median": round(statistics.median(values), 3), "min": min(values),
            "max": max(values), "runs": values}


def run(sizes: list[int], repeats: int, smoke: bool) -> dict:
    load_before = os.getloadavg()
    began = time.perf_counter()
    model_dir = Path(tempfile.mkdtemp()) / "tinyllama"
    model_dir.mkdir()
    (model_dir / "config.json").write_text(json.dumps(MODEL_CONFIG))
    model_uri = f"file://{model_dir}"
    runs: dict[int, dict[str, list[dict]]] = {n: {"kubetune": [], "reference": []} for n in sizes}
    for n in sizes:
        for rep in range(repeats):
            # Interleaved: the side that goes first alternates with each repetition.
            for side in (("kubetune", "reference") if rep % 2 == 0 else ("reference", "kubetune")):
                runs[n][side].append(run_once(side, n, model_uri, measure_floor=n == sizes[0]))
    load_after = os.getloadavg()

    small, large = sizes[0], sizes[-1]
    by_size = {}
    for n in sizes:
        kt, ref = runs[n]["kubetune"], runs[n]["reference"]
        p99_kt, p99_ref = summarise(kt, "p99"), summarise(ref, "p99")
        by_size[str(n)] = {
            "p99_ratio_vs_reference_operator": round(p99_kt["median"] / p99_ref["median"], 3),
            "p99_ratio_per_repetition": [round(a["latency"]["p99"] / b["latency"]["p99"], 3)
                                         for a, b in zip(kt, ref, strict=True)],
            "kubetune_seconds_p99": p99_kt, "reference_seconds_p99": p99_ref,
            "kubetune_seconds_p50": summarise(kt, "p50"),
            "reference_seconds_p50": summarise(ref, "p50"),
            "jobs_missing": sum(r["missing"] for r in kt + ref),
        }
    kt_small = runs[small]["kubetune"]
    per_job = kt_small[0]["writes_by_request"]
    ratio_small = by_size[str(small)]["p99_ratio_vs_reference_operator"]
    ratio_large = by_size[str(large)]["p99_ratio_vs_reference_operator"]
    watched_rss = statistics.median(r["rss_mb_watched"] for r in runs[large]["kubetune"])
    writes_per_job = statistics.median(r["writes_per_job"] for r in kt_small)
    floors = [r["floor"]["p99"] for r in kt_small + runs[small]["reference"]]
    return {
        "benchmark": "operator_scale",
        "p99_ratio_vs_reference_operator": ratio_small,
        # At 1,000 jobs; a smoke run puts its largest size here (jobs_large says which).
        "p99_ratio_vs_reference_operator_1000": ratio_large if large == 1000 or smoke else None,
        "jobs": small,
        "jobs_large": large,
        "by_size": by_size,
        "seconds_floor_bare_job_p99": {"median": round(statistics.median(floors), 3),
                                       "min": min(floors), "max": max(floors)},
        "writes_per_job": writes_per_job,
        "writes_per_job_by_request": per_job,
        "reference_writes_per_job": statistics.median(
            r["writes_per_job"] for r in runs[small]["reference"]),
        "operator_cpu_ms_per_job": statistics.median(r["cpu_ms_per_job"] for r in kt_small),
        "reference_cpu_ms_per_job": statistics.median(
            r["cpu_ms_per_job"] for r in runs[small]["reference"]),
        "operator_rss_mb_idle": statistics.median(r["rss_mb_idle"] for r in kt_small),
        "operator_rss_mb_watched": watched_rss,
        "watched": large,
        "targets": {"p99_ratio_vs_reference_operator": 2.0,
                    "p99_ratio_vs_reference_operator_1000": 2.5, "writes_per_job": 6,
                    "rss_mb": 250},
        "met": {"p99_ratio_vs_reference_operator": ratio_small <= 2.0,
                "p99_ratio_vs_reference_operator_1000": large == 1000 and ratio_large <= 2.5,
                "writes": writes_per_job <= 6, "rss": watched_rss < 250},
        "runs": {str(n): sides for n, sides in runs.items()},
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in load_after],
        "cpus": os.cpu_count(),
        "conditions": {"machine": platform.machine(), "python": platform.python_version(),
                       "sizes": sizes, "repeats": repeats, "smoke": smoke,
                       "order": "interleaved: the side that runs first alternates",
                       "model": "TinyLlama-1.1B config.json (file://), read by the fit check",
                       "reference": "kopf, one @kopf.on.create handler creating an owned Job "
                                    "with the kubernetes client; kopf defaults",
                       "processes": "emulator, operator and client in separate processes; "
                                    "a fresh emulator per run",
                       "seconds": round(time.perf_counter() - began, 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000",
                        help="FinetuneJobs created at once, smallest first (comma-separated)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--smoke", action="store_true",
                        help="20 and 40 jobs, one repetition: checks the JSON, not the speed")
    parser.add_argument("--serve-emulator", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--serve-reference-operator", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_emulator:
        serve_emulator(args.serve_emulator)
        return
    if args.serve_reference_operator:
        serve_reference_operator()
        return
    if args.smoke:
        args.sizes, args.repeats = "20,40", 1
    sizes = sorted(int(n) for n in args.sizes.split(","))
    print(json.dumps(run(sizes, args.repeats, args.smoke)))


if __name__ == "__main__":
    main()
