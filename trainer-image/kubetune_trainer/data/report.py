"""The data report: rows in, rows dropped by reason, tokens and length percentiles."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from .readers import BadRow

EXAMPLES_PER_REASON = 5


@dataclass
class SplitReport:
    """What happened to one file (training or validation set) on its way to the model."""

    rows_in: int = 0
    dropped: Counter = field(default_factory=Counter)
    samples: dict[str, list[str]] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list)
    trainable_tokens: int = 0

    def drop(self, bad: BadRow) -> None:
        self.dropped[bad.reason] += 1
        shown = self.samples.setdefault(bad.reason, [])
        if len(shown) < EXAMPLES_PER_REASON:
            shown.append(bad.detail)

    @property
    def rows_out(self) -> int:
        return len(self.lengths)

    def to_json(self) -> dict:
        lengths = sorted(self.lengths)
        return {
            "rowsIn": self.rows_in,
            "rowsOut": self.rows_out,
            "dropped": dict(sorted(self.dropped.items())),
            "droppedExamples": self.samples,
            "tokens": sum(lengths),
            "trainableTokens": self.trainable_tokens,
            "lengths": {
                "min": lengths[0] if lengths else 0,
                "p50": percentile(lengths, 50),
                "p90": percentile(lengths, 90),
                "p99": percentile(lengths, 99),
                "max": lengths[-1] if lengths else 0,
            },
        }


def percentile(sorted_values: list[int], q: float) -> int:
    if not sorted_values:
        return 0
    rank = max(0, min(len(sorted_values) - 1, round(q / 100 * (len(sorted_values) - 1))))
    return sorted_values[rank]


def summary(report: dict) -> dict:
    """The few numbers that fit into the termination message."""
    train = report["train"]
    return {
        "format": report["format"],
        "rowsIn": train["rowsIn"],
        "rowsOut": train["rowsOut"],
        "dropped": dict(list(train["dropped"].items())[:8]),
        "tokens": train["tokens"],
        "validationRows": report.get("validation", {}).get("rowsOut", 0),
    }


def log_lines(report: dict) -> list[str]:
    train = report["train"]
    lines = [
        f"data: format={report['format']} rows in={train['rowsIn']} used={train['rowsOut']} "
        f"tokens={train['tokens']} lengths p50={train['lengths']['p50']} "
        f"p90={train['lengths']['p90']} p99={train['lengths']['p99']} "
        f"max={train['lengths']['max']}",
    ]
    for reason, count in train["dropped"].items():
        first = "; ".join(train["droppedExamples"].get(reason, [])[:3])
        lines.append(f"data: dropped {count} rows ({reason}): {first}")
    if "validation" in report:
        validation = report["validation"]
        lines.append(f"data: validation rows={validation['rowsOut']} "
                     f"dropped={sum(validation['dropped'].values())}")
    return lines
