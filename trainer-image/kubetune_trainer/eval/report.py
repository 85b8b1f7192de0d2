"""The evaluation's artifacts under output.uri, written through the trainer's storage layer:

    predictions.jsonl   one line per scored example: input, reference/label, predictions of
                        the model (and the baseline), per-example scores
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


def write_report(output_uri: str, report: dict, records: list[dict]) -> str:
    """Write both files; returns the report's URI."""
    dest = Destination(output_uri)
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    write_file(dest, PREDICTIONS, lines)
    report = {**report, "predictionsUri": dest.uri_of(PREDICTIONS)}
    uri = write_file(dest, REPORT, json.dumps(report, indent=2, ensure_ascii=False) + "\n")
    log.info("report: wrote %s and %s", uri, dest.uri_of(PREDICTIONS))
    return uri
