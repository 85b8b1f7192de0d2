"""Preference data (a feedback file): how often a model prefers the chosen response.

- winRate: the share of pairs (prompt, chosen, rejected) where the model gives the chosen
  response the higher log-probability (summed over its tokens, the quantity DPO trains);
  a tie counts half. The base model is scored the same way, so the comparison row shows
  what finetuning changed, with the paired bootstrap interval of the difference.

Pairs come from the feedback file by the rules of `kubetune_trainer.data.feedback`, tokenized
exactly as the trainer tokenizes them.
"""

from __future__ import annotations

import time

import numpy as np

from ..data.encode import encode_pair, fit_length
from .causal import LOSS_BATCH_SIZE, LOSS_BATCH_TOKENS, PROMPT_CHARS, REPORT_ITEMS, Scores
from .data import EvalData
from .metrics import mean
from .models import LoadedModel
from .scoring import token_losses

PREFERENCE_METRICS = ("winRate",)


def wins(chosen_logps: np.ndarray, rejected_logps: np.ndarray) -> np.ndarray:
    """1 where chosen is more likely, 0.5 on a tie, 0 where rejected is."""
    return np.where(chosen_logps > rejected_logps, 1.0,
                    np.where(chosen_logps == rejected_logps, 0.5, 0.0))


class PreferenceTask:
    def __init__(self, data: EvalData, metrics: list[str], device):
        self.data = data
        self.device = device
        self.notes: list[str] = []
        if not any(name in PREFERENCE_METRICS for name in metrics):
            self.notes.append("a feedback dataset is scored with winRate; metrics lists "
                              f"{', '.join(metrics)}")

    @property
    def samples(self) -> int:
        return len(self.data.examples)

    def use_labels_of(self, loaded: LoadedModel) -> None:
        """Nothing to fix: each model is scored on its own tokenization."""

    def score(self, loaded: LoadedModel) -> Scores:
        started = time.perf_counter()
        sides = []
        for example in self.data.examples:
            pair = encode_pair(loaded.tokenizer, example)
            sides += [fit_length(pair.chosen, loaded.max_length, "truncate"),
                      fit_length(pair.rejected, loaded.max_length, "truncate")]
        losses = token_losses(loaded.model, sides, pad_id=loaded.tokenizer.pad_token_id,
                              device=self.device, batch_size=LOSS_BATCH_SIZE,
                              max_tokens=LOSS_BATCH_TOKENS)
        logps = -np.array([loss for loss, _ in losses], dtype=np.float64)
        chosen, rejected = logps[0::2], logps[1::2]
        scores = Scores(metrics={"winRate": float(wins(chosen, rejected).mean())})
        scores.per_example = {k: {"chosenLogp": round(float(chosen[k]), 4),
                                  "rejectedLogp": round(float(rejected[k]), 4),
                                  "win": float(wins(chosen[k:k + 1], rejected[k:k + 1])[0])}
                              for k in range(len(chosen))}
        scores.seconds = time.perf_counter() - started
        return scores

    def statistic(self, scores: Scores):
        """winRate on a resample of the pairs (for the bootstrap)."""
        won = np.array([scores.per_example[k]["win"] for k in range(self.samples)])

        def statistic(indices: np.ndarray) -> dict[str, float]:
            return {"winRate": float(won[indices].mean())}

        return statistic

    def records(self, model: Scores, baselines: dict[str, Scores]) -> list[dict]:
        out = []
        for k, example in enumerate(self.data.examples):
            record = {"line": example.line, "prompt": example.prompt[-PROMPT_CHARS:],
                      "chosen": example.chosen, "rejected": example.rejected,
                      **model.per_example[k]}
            for name, scores in baselines.items():
                record.setdefault("baselines", {})[name] = scores.per_example[k]
            out.append(record)
        return out

    def report(self, model: Scores, baselines: dict[str, Scores]) -> dict:
        records = [{**r, "margin": round(r["chosenLogp"] - r["rejectedLogp"], 4)}
                   for r in self.records(model, {})]
        return {"notes": self.notes, "pairs": self.samples,
                "meanMargin": round(mean([r["margin"] for r in records]), 4),
                # The pairs the model most prefers the rejected response on, worst first.
                "mostRejected": sorted(records, key=lambda r: r["margin"])[:REPORT_ITEMS]}

    def error_analysis(self, model: Scores) -> None:
        return None
