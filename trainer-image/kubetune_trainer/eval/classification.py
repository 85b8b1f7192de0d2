"""Sequence classification: predict a label per text, then accuracy, precision, recall, F1.

The label space is the model under test's (its saved label mapping). The baseline predicts
into the same space (see models.load_baseline), so its confusion matrix, per-class scores and
metrics line up with the model's cell by cell.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..data.encode import Encoded
from . import analysis
from .data import EvalData, LabelledSet, label_examples
from .metrics import classification_metrics, confusion_matrix, per_class_scores
from .models import LoadedModel
from .scoring import classify

BATCH_SIZE = 64  # examples per forward pass
BATCH_TOKENS = 16_384  # padded tokens per forward pass (bounds activation memory)
REPORT_ITEMS = 50  # confusions and worst classes kept in the report
DENSE_MATRIX_MAX_CLASSES = 100  # above this the report lists non-zero cells only
TEXT_CHARS = 500  # of each text in predictions.jsonl (the dataset has the rest)


@dataclass
class Scores:
    metrics: dict[str, float]
    predicted: list[int]
    confidence: list[float]
    matrix: np.ndarray
    seconds: float


class ClassificationTask:
    def __init__(self, data: EvalData, average: str, device):
        self.data = data
        self.average = average
        self.device = device
        self.labelled: LabelledSet | None = None
        self.mapping = None
        self.labels: list[str] = []

    @property
    def samples(self) -> int:
        return len(self.labelled.examples) if self.labelled else 0

    def use_labels_of(self, loaded: LoadedModel) -> None:
        """Fix the label space to the model under test's and map the data into it."""
        self.mapping = loaded.mapping
        self.labels = list(loaded.mapping.names)
        self.labelled = label_examples(self.data, loaded.mapping)

    def score(self, loaded: LoadedModel) -> Scores:
        started = time.perf_counter()
        encoding = loaded.tokenizer([e.text for e in self.labelled.examples], truncation=True,
                                    max_length=loaded.max_length)
        types = encoding.get("token_type_ids")
        items = [Encoded(example.line, list(ids), label=label,
                         token_type_ids=list(types[k]) if types is not None else None)
                 for example, ids, label, k in zip(
                     self.labelled.examples, encoding["input_ids"], self.labelled.label_ids,
                     range(len(self.labelled.examples)), strict=True)]
        predicted, confidence = classify(
            loaded.model, items, pad_id=loaded.tokenizer.pad_token_id, device=self.device,
            batch_size=BATCH_SIZE, max_tokens=BATCH_TOKENS)
        if list(loaded.mapping.names) != self.labels:
            # Same labels in another order (a baseline trained elsewhere): translate by name.
            to_ours = [self.mapping.label2id[name] for name in loaded.mapping.names]
            predicted = [to_ours[p] for p in predicted]
        matrix = confusion_matrix(self.labelled.label_ids, predicted, len(self.labels))
        return Scores(classification_metrics(matrix, self.average), predicted, confidence,
                      matrix, time.perf_counter() - started)

    def records(self, model: Scores, baseline: Scores | None) -> list[dict]:
        """One line of predictions.jsonl per scored example."""
        labels, out = self.labels, []
        for k, example in enumerate(self.labelled.examples):
            truth, guess = self.labelled.label_ids[k], model.predicted[k]
            record = {"line": example.line, "text": example.text[:TEXT_CHARS],
                      "label": labels[truth], "predicted": labels[guess],
                      "confidence": round(model.confidence[k], 4), "correct": truth == guess}
            if baseline is not None:
                record["baselinePredicted"] = labels[baseline.predicted[k]]
                record["baselineCorrect"] = truth == baseline.predicted[k]
            out.append(record)
        return out

    def _class_sections(self, scores: Scores) -> dict:
        per_class = per_class_scores(scores.matrix)
        return {
            "perClass": analysis.per_class_table(per_class, self.labels),
            "topConfusions": analysis.top_confusions(scores.matrix, self.labels, REPORT_ITEMS),
            "worstClasses": analysis.worst_classes(per_class, self.labels, REPORT_ITEMS),
            "confusionMatrix": self._matrix(scores.matrix),
        }

    def _matrix(self, matrix: np.ndarray) -> dict:
        if len(self.labels) <= DENSE_MATRIX_MAX_CLASSES:
            return {"labels": self.labels, "rows": "true label", "columns": "predicted label",
                    "matrix": matrix.tolist()}
        rows, cols = np.nonzero(matrix)
        return {"labels": self.labels, "cells": [
            {"label": self.labels[r], "predicted": self.labels[c], "count": int(matrix[r, c])}
            for r, c in zip(rows.tolist(), cols.tolist(), strict=True)]}

    def report(self, model: Scores, baseline: Scores | None) -> dict:
        section = {"average": self.average, "labels": self.labels,
                   "unknownLabels": dict(self.labelled.unknown.most_common()),
                   "model": self._class_sections(model)}
        if baseline is not None:
            section["baseline"] = self._class_sections(baseline)
        return section

    def error_analysis(self, model: Scores) -> dict:
        per_class = per_class_scores(model.matrix)
        return analysis.status_summary(
            analysis.top_confusions(model.matrix, self.labels, analysis.STATUS_ITEMS),
            analysis.worst_classes(per_class, self.labels, analysis.STATUS_ITEMS))
