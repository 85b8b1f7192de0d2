"""What admission (schema, CEL, built-in validation) costs the API emulator per write.

    python benchmarks/emulator_admission.py [--objects 300]

Creates N FinetuneJobs, merge-patches each (a transition rule runs) and creates N Jobs over
HTTP against the emulator, once with admission as shipped and once with it switched off
(the emulator before admission: the strongest, because cheapest, alternative). Figures on
stdout's last line as JSON: milliseconds per request, p50 and p99, for each kind of write,
with and without admission.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import statistics
import time
from typing import Any

import requests
from kubetune.emulator import EmulatorThread

CRDS = pathlib.Path(__file__).resolve().parents[1] / "crds"
FTJS = "/apis/kubetune.io/v1alpha1/namespaces/default/finetunejobs"
JOBS = "/apis/batch/v1/namespaces/default/jobs"


def finetune_job(name: str) -> dict[str, Any]:
    return {"apiVersion": "kubetune.io/v1alpha1", "kind": "FinetuneJob", "metadata": {"name": name},
            "spec": {"model": {"uri": "hf://org/model"}, "dataset": {"uri": "pvc://data/train.jsonl"},
                     "output": {"uri": f"pvc://models/{name}"}, "resources": {"gpus": 0}}}


def job(name: str) -> dict[str, Any]:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name, "labels": {"app": "x"}},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [
                {"name": "trainer", "image": "kubetune/trainer:1", "command": ["python", "-m", "x"],
                 "resources": {"limits": {"memory": "1Gi"}},
                 "env": [{"name": "A", "value": "1"}]}],
                "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]}}}}


def timed(call, *args: Any, **kwargs: Any) -> float:
    start = time.perf_counter()
    response = call(*args, **kwargs)
    elapsed = time.perf_counter() - start
    assert response.ok, response.text
    return elapsed * 1000


def summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {"p50_ms": round(statistics.median(ordered), 2),
            "p99_ms": round(ordered[min(len(ordered) - 1, int(0.99 * len(ordered)))], 2)}


def run(objects: int, admission: bool) -> dict[str, Any]:
    with EmulatorThread(crds=CRDS) as cluster, requests.Session() as session:
        if not admission:
            def switch_off(emulator) -> None:
                emulator.operations.admission.decode = lambda *args, **kwargs: None
                emulator.operations.admission.validate = lambda *args, **kwargs: None
            cluster.call(switch_off)
        url = cluster.url
        creates, patches, jobs = [], [], []
        for index in range(objects):
            name = f"job-{index}"
            creates.append(timed(session.post, url + FTJS, json=finetune_job(name)))
            patches.append(timed(session.patch, f"{url}{FTJS}/{name}",
                                 data=json.dumps({"spec": {"suspend": True}}),
                                 headers={"Content-Type": "application/merge-patch+json"}))
            jobs.append(timed(session.post, url + JOBS, json=job(name)))
        return {"finetunejob_create": summary(creates), "finetunejob_merge_patch": summary(patches),
                "job_create": summary(jobs)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=300)
    args = parser.parse_args()
    run(20, True)  # warm up: imports, schema loading, CEL compilation
    result = {"objects": args.objects, "with_admission": run(args.objects, True),
              "without_admission": run(args.objects, False)}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
