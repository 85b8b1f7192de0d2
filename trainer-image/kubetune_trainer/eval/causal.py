"""Causal LM: teacher-forced loss and perplexity, then greedy answers scored against references.

- loss: mean cross-entropy over the reference (answer) tokens, the same targets and
  formula as the trainer's evalLoss; perplexity = exp(loss), pooled over all tokens.
- exactMatch, tokenF1, rougeL: the model answers each prompt greedily (up to
  generation.maxNewTokens new tokens) and the answer is compared with the reference; each is
  the mean over examples. Plain-text rows have no prompt/answer split and get loss only.

Each half runs only when one of its metrics is asked for: generation is the slow part.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from . import analysis
from .data import CausalItem, EvalData, causal_items
from .metrics import MAX_LOG_PERPLEXITY, generation_scores, mean, perplexity
from .models import LoadedModel
from .scoring import generate, token_losses

LOSS_METRICS = ("loss", "perplexity")
GENERATION_METRICS = ("exactMatch", "tokenF1", "rougeL")
LOSS_BATCH_SIZE = 16
# Logits are tokens x vocabulary: 8k tokens of a 150k vocabulary are 2.5 GB in bf16.
LOSS_BATCH_TOKENS = 8192
REPORT_ITEMS = 20  # lowest-scoring examples kept in the report
PROMPT_CHARS = 1000  # of each prompt in predictions.jsonl and the report


@dataclass
class Scores:
    metrics: dict[str, float]
    losses: list[tuple[float, int]] | None = None  # (loss sum, tokens) per example
    answers: dict[int, str] = field(default_factory=dict)  # example index -> answer
    per_example: dict[int, dict] = field(default_factory=dict)  # index -> generation scores
    seconds: float = 0.0


class CausalTask:
    def __init__(self, data: EvalData, metrics: list[str], generation, device):
        self.data = data
        self.device = device
        self.generation = generation
        self.wants_loss = any(name in LOSS_METRICS for name in metrics)
        self.wants_generation = any(name in GENERATION_METRICS for name in metrics)
        self.notes: list[str] = []
        self.items: list[CausalItem] = []

    @property
    def samples(self) -> int:
        return len(self.data.examples)

    def use_labels_of(self, loaded: LoadedModel) -> None:
        """Nothing to fix for causal LM: each model is scored on its own tokenization."""

    def score(self, loaded: LoadedModel) -> Scores:
        started = time.perf_counter()
        items = causal_items(self.data.examples, loaded.tokenizer, loaded.max_length)
        self.items = self.items or items  # prompts and references for the records
        scores = Scores(metrics={})
        pad_id = loaded.tokenizer.pad_token_id
        if self.wants_loss:
            scores.losses = token_losses(
                loaded.model, [item.encoded for item in items], pad_id=pad_id,
                device=self.device, batch_size=LOSS_BATCH_SIZE, max_tokens=LOSS_BATCH_TOKENS)
            loss_sum = sum(loss for loss, _ in scores.losses)
            tokens = sum(count for _, count in scores.losses)
            if tokens:
                scores.metrics["loss"] = loss_sum / tokens
                scores.metrics["perplexity"] = perplexity(loss_sum, tokens)
        answerable = [k for k, item in enumerate(items) if item.reference is not None]
        if self.wants_generation and not answerable and not self.notes:
            self.notes.append("exactMatch, tokenF1 and rougeL need a prompt and a reference "
                              "answer (chat, instruction or completion rows); this dataset "
                              f"is {self.data.format}")
        if self.wants_generation and answerable:
            answers = generate(
                loaded.model, loaded.tokenizer, [items[k].prompt_ids for k in answerable],
                device=self.device, batch_size=self.generation.batch_size,
                max_new_tokens=self.generation.max_new_tokens, max_length=loaded.max_length)
            for k, answer in zip(answerable, answers, strict=True):
                scores.answers[k] = answer
                scores.per_example[k] = generation_scores(answer, items[k].reference)
            for name in GENERATION_METRICS:
                scores.metrics[name] = mean([s[name] for s in scores.per_example.values()])
        scores.seconds = time.perf_counter() - started
        return scores

    def statistic(self, scores: Scores):
        """The metrics on a resample of the examples (for the bootstrap): loss pooled over the
        resample's tokens, generation metrics averaged over its answerable examples."""
        n = self.samples
        sums = tokens = None
        if scores.losses is not None:
            sums = np.array([loss for loss, _ in scores.losses], dtype=np.float64)
            tokens = np.array([count for _, count in scores.losses], dtype=np.float64)
        generated = {name: np.full(n, np.nan) for name in GENERATION_METRICS
                     if name in scores.metrics}
        for k, values in scores.per_example.items():
            for name, column in generated.items():
                column[k] = values[name]

        def statistic(indices: np.ndarray) -> dict[str, float]:
            out: dict[str, float] = {}
            if "loss" in scores.metrics:
                count = tokens[indices].sum()
                loss = sums[indices].sum() / count if count else math.nan
                out["loss"] = loss
                out["perplexity"] = math.exp(min(loss, MAX_LOG_PERPLEXITY)) if count else math.nan
            for name, column in generated.items():
                values = column[indices]
                values = values[~np.isnan(values)]
                out[name] = float(values.mean()) if values.size else math.nan
            return out

        return statistic

    def records(self, model: Scores, baselines: dict[str, Scores]) -> list[dict]:
        out = []
        for k, example in enumerate(self.data.examples):
            item = self.items[k]
            record = {"line": example.line, "prompt": item.prompt_text[-PROMPT_CHARS:],
                      "reference": item.reference}
            record.update(_example_scores(model, k, ""))
            for name, scores in baselines.items():
                record.setdefault("baselines", {})[name] = _example_scores(scores, k, "")
            out.append(record)
        return out

    def report(self, model: Scores, baselines: dict[str, Scores]) -> dict:
        records = self.records(model, {})
        return {
            "maxNewTokens": self.generation.max_new_tokens,
            "notes": self.notes,
            "lowestScoring": analysis.lowest_scoring(records, REPORT_ITEMS),
        }

    def error_analysis(self, model: Scores) -> None:
        """status.errorAnalysis is about classes; causal-lm's analysis is in the report."""
        return None


def _example_scores(scores: Scores, k: int, prefix: str) -> dict:
    def key(name: str) -> str:
        return prefix + name[0].upper() + name[1:] if prefix else name

    out: dict = {}
    if k in scores.answers:
        out[key("prediction")] = scores.answers[k]
        out.update({key(name): round(value, 4) for name, value in scores.per_example[k].items()})
    if scores.losses is not None:
        loss_sum, tokens = scores.losses[k]
        out[key("loss")] = round(loss_sum / tokens, 4) if tokens else None
        out[key("tokens")] = tokens
    return out
