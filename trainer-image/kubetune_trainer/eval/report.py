"""The evaluation's artifacts under output.uri, written through the trainer's storage layer:

    predictions.jsonl   one line per scored example: input, reference/label, predictions of
                        the model (and the baseline), per-example scores
    benchmarks.jsonl    with spec.benchmarks: one line per benchmark example, its prompt,
                        target and per-example scores of the model and its base model
    report.json         everything else: config, dataset report, all metrics of both models,
                        the comparison, per-class scores, confusion matrix, error analysis

report.json is written last, so a reader that finds it can trust predictions.jsonl is there.
"""

from __future__ import annotations

import json
import logging

from ..outputs import write_file
from ..storage import Destination

log = logging.getLogger(__name__)

REPORT = "report.json"
PREDICTIONS = "predictions.jsonl"


def write_report(output_uri: str, report: dict, records: list[dict],
                 extra: dict[str, list[dict]] | None = None) -> str:
    """Write both files (and `extra` JSONL files by name); returns the report's URI."""
    dest = Destination(output_uri)
    for name, rows in {PREDICTIONS: records, **(extra or {})}.items():
        write_file(dest, name, "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n"
                                       for r in rows))
    report = {**report, "predictionsUri": dest.uri_of(PREDICTIONS)}
    uri = write_file(dest, REPORT, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    log.info("report: wrote %s and %s", uri, dest.uri_of(PREDICTIONS))
    return uri
