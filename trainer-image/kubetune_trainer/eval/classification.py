"""Sequence classification: predict a label per text, then accuracy, precision, recall, F1.

The label space is the model under test's (its saved label mapping). Every baseline predicts
a probability per class of the same space (see models.load_baseline and baselines/), so its
confusion matrix, per-class scores and metrics line up with the model's cell by cell.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from ..data.encode import Encoded
from . import analysis, calibration
from .data import EvalData, LabelledSet, label_examples
from .metrics import classification_metrics, confusion_matrix, label_metrics, per_class_scores
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
    predicted: np.ndarray  # class id per example
    probabilities: np.ndarray  # (examples, classes)
    matrix: np.ndarray
    seconds: float

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted class."""
        return self.probabilities[np.arange(len(self.predicted)), self.predicted]


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

    @property
    def texts(self) -> list[str]:
        return [e.text or "" for e in self.labelled.examples]

    @property
    def truth(self) -> np.ndarray:
        return np.asarray(self.labelled.label_ids, dtype=np.int64)

    def use_labels_of(self, loaded: LoadedModel) -> None:
        """Fix the label space to the model under test's and map the data into it."""
        self.mapping = loaded.mapping
        self.labels = list(loaded.mapping.names)
        self.labelled = label_examples(self.data, loaded.mapping)

    def score(self, loaded: LoadedModel) -> Scores:
        started = time.perf_counter()
        encoding = loaded.tokenizer(self.texts, truncation=True, max_length=loaded.max_length)
        types = encoding.get("token_type_ids")
        items = [Encoded(example.line, list(ids), label=label,
                         token_type_ids=list(types[k]) if types is not None else None)
                 for example, ids, label, k in zip(
                     self.labelled.examples, encoding["input_ids"], self.labelled.label_ids,
                     range(len(self.labelled.examples)), strict=True)]
        probabilities = classify(
            loaded.model, items, pad_id=loaded.tokenizer.pad_token_id, device=self.device,
            batch_size=BATCH_SIZE, max_tokens=BATCH_TOKENS)
        if list(loaded.mapping.names) != self.labels:
            # Same labels in another order (a baseline trained elsewhere): translate by name.
            theirs = [loaded.mapping.label2id[name] for name in self.labels]
            probabilities = probabilities[:, theirs]
        return self.scores_of(probabilities, time.perf_counter() - started)

    def scores_of(self, probabilities: np.ndarray, seconds: float) -> Scores:
        """Scores of any predictor that gives a probability per class of our label space."""
        predicted = probabilities.argmax(axis=1).astype(np.int64)
        matrix = confusion_matrix(self.labelled.label_ids, predicted, len(self.labels))
        return Scores(classification_metrics(matrix, self.average), predicted, probabilities,
                      matrix, seconds)

    def statistic(self, scores: Scores):
        """The metrics on a resample of the examples (for the bootstrap)."""
        truth, predicted, classes = self.truth, scores.predicted, len(self.labels)
        return lambda indices: label_metrics(truth[indices], predicted[indices], classes,
                                             self.average)

    def calibration(self, scores: Scores) -> tuple[dict, dict]:
        """(status.calibration, the report's calibration section)."""
        confidence = scores.confidence
        correct = scores.predicted == self.truth
        status = {"ece": round(calibration.expected_calibration_error(confidence, correct), 6),
                  "brier": round(calibration.brier_score(scores.probabilities, self.truth), 6)}
        errors = [{"line": self.labelled.examples[i].line,
                   "text": (self.labelled.examples[i].text or "")[:TEXT_CHARS],
                   "label": self.labels[int(self.truth[i])],
                   "predicted": self.labels[int(scores.predicted[i])],
                   "confidence": round(float(confidence[i]), 4)}
                  for i in calibration.confident_errors(confidence, correct)]
        report = {**status, "bins": calibration.BINS,
                  "reliability": calibration.reliability_table(confidence, correct),
                  "mostConfidentErrors": errors}
        return status, report

    def records(self, model: Scores, baselines: dict[str, Scores]) -> list[dict]:
        """One line of predictions.jsonl per scored example."""
        labels, out = self.labels, []
        confidence = model.confidence
        for k, example in enumerate(self.labelled.examples):
            truth, guess = self.labelled.label_ids[k], int(model.predicted[k])
            record = {"line": example.line, "text": (example.text or "")[:TEXT_CHARS],
                      "label": labels[truth], "predicted": labels[guess],
                      "confidence": round(float(confidence[k]), 4), "correct": truth == guess}
            if baselines:
                record["baselines"] = {name: labels[int(scores.predicted[k])]
                                       for name, scores in baselines.items()}
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

    def report(self, model: Scores, baselines: dict[str, Scores]) -> dict:
        section = {"average": self.average, "labels": self.labels,
                   "unknownLabels": dict(self.labelled.unknown.most_common()),
                   "model": self._class_sections(model)}
        if baselines:
            section["baselines"] = {name: self._class_sections(scores)
                                    for name, scores in baselines.items()}
        return section

    def error_analysis(self, model: Scores) -> dict:
        per_class = per_class_scores(model.matrix)
        return analysis.status_summary(
            analysis.top_confusions(model.matrix, self.labels, analysis.STATUS_ITEMS),
            analysis.worst_classes(per_class, self.labels, analysis.STATUS_ITEMS))
