"""Fitting and scoring the cheap classification baselines, one after another.

Each returns (examples, classes) probabilities over the model under test's labels, which the
classification task turns into the same Scores the model gets.
"""

from __future__ import annotations

import logging
import time

from . import majority, probe, tfidf, zero_shot
from .encoder import Encoder
from .training import TrainingSet

log = logging.getLogger(__name__)


def score_cheap_baselines(names: list[str], task, training: TrainingSet | None,
                          encoder_uri: str | None, descriptions: dict[str, str],
                          device) -> tuple[dict, dict[str, str]]:
    """({name: Scores}, {name: why it was not scored}) for the cheap baselines in `names`."""
    scores, skipped = {}, {}
    texts, classes = task.texts, len(task.labels)
    encoder = None
    train_embeddings = None
    for name in names:
        started = time.perf_counter()
        if name in ("majority", "tfidf", "probe") and training is None:
            skipped[name] = "no training data (baselineTraining.uri)"
            continue
        if name in ("probe", "zero-shot") and encoder_uri is None:
            skipped[name] = "no base encoder (baseline.uri or finetuneJobRef)"
            continue
        if name in ("probe", "zero-shot") and encoder is None:
            encoder = Encoder(encoder_uri, device)
            test_embeddings = encoder.embed(texts)
        if name == "majority":
            probabilities = majority.predict(training.texts, training.label_ids, texts, classes)
        elif name == "tfidf":
            probabilities = tfidf.predict(training.texts, training.label_ids, texts, classes)
        elif name == "probe":
            if train_embeddings is None:
                train_embeddings = encoder.embed(training.texts)
            probabilities = probe.predict(train_embeddings, training.label_ids, test_embeddings,
                                          classes)
        elif name == "zero-shot":
            labels = encoder.embed([zero_shot.description(label, descriptions)
                                    for label in task.labels])
            probabilities = zero_shot.predict(labels, test_embeddings)
        else:
            continue
        scores[name] = task.scores_of(probabilities, time.perf_counter() - started)
        log.info("baseline %s: %s in %.1fs", name, " ".join(
            f"{k}={v:.4f}" for k, v in scores[name].metrics.items()), scores[name].seconds)
    if encoder is not None:
        encoder.release()
    return scores, skipped
