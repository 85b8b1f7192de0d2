"""What `kubetune validate` and the operator's spec check cost, on good and hostile input.

    python benchmarks/validate_inputs.py [--repeat 3]

Figures (seconds, best of --repeat):
- valid_document_ms: the operator's check of one valid FinetuneJob (validate_document), and
  the same check with the CRD's CEL rules always run (cel_always_ms), which is why the CEL
  rules only run when the models found a problem;
- per hostile input (billion laughs, 5,000-deep nesting, 100,000 keys, 501 documents, a
  3 MiB file): the time to the problem line, next to the time PyYAML's C loader alone takes
  to build the same input (the strongest unbounded alternative: it must finish before any
  check could start). Null for 5,000-deep nesting (libyaml refuses it too), for billion
  laughs (PyYAML shares aliased nodes, so building is cheap; walking the tree is what
  explodes) and for the 3 MiB file (not parsed at all).
One JSON object on the last line.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import yaml
from kubetune import validation

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "quickstart" / "finetunejob.yaml"
FINETUNE_JOB = yaml.safe_load(EXAMPLE.read_text())


def best(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def hostile_inputs() -> dict[str, str]:
    laughs = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    laughs += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 10)]
    return {
        "billion_laughs": "\n".join(laughs),
        "nesting_5000": "[" * 5000 + "]" * 5000,
        "keys_100k": "".join(f"k{i}: v\n" for i in range(100_001)),
        "documents_501": "---\na: 1\n" * 501,
        "file_3mib": "# " + "x" * validation.MAX_BYTES,
    }


def plain_load_seconds(text: str, repeat: int) -> float | None:
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return best(lambda: list(yaml.load_all(text, Loader=loader)), repeat)
    except (RecursionError, yaml.YAMLError):
        return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    validation.validate_document(FINETUNE_JOB)  # compile the CEL rules once
    n = 200
    valid = best(lambda: [validation.validate_document(FINETUNE_JOB) for _ in range(n)], args.repeat)
    resource = validation.RESOURCES["FinetuneJob"]
    cel = best(lambda: [validation._rule_problems(FINETUNE_JOB, resource, "x", False)
                        for _ in range(n)], args.repeat)

    hostile = {}
    for name, text in hostile_inputs().items():
        seconds = best(lambda text=text: validation.validate_texts([("input", text)]), args.repeat)
        _, problems = validation.validate_texts([("input", text)])
        hostile[name] = {
            "validate_seconds": round(seconds, 4),
            "plain_yaml_load_seconds": None if name == "billion_laughs" or name == "file_3mib"
            else _round(plain_load_seconds(text, 1)),
            "problem": problems[0].message if problems else None,
        }
    print(json.dumps({
        "benchmark": "validate_inputs",
        "valid_document_ms": round(valid / n * 1000, 3),
        "cel_always_ms": round((valid + cel) / n * 1000, 3),
        "hostile": hostile,
        "bounds": {"bytes": validation.MAX_BYTES, "documents": validation.MAX_DOCUMENTS,
                   "depth": validation.MAX_DEPTH, "nodes": validation.MAX_NODES},
        "python": platform.python_version(), "libyaml": yaml.__with_libyaml__,
        "machine": platform.machine(),
    }))


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


if __name__ == "__main__":
    main()
