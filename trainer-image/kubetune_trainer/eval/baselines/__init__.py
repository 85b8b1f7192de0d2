"""Baselines: what a practitioner would try before finetuning, scored on the same examples.

Classification baselines predict a probability per class of the model under test's label
space, for each evaluation text; scikit-learn does every fit.

    training.py   the training examples they learn from, mapped to the model's labels
    majority.py   the most frequent training label, always
    tfidf.py      TF-IDF word 1-2-grams + logistic regression
    encoder.py    mean-pooled, L2-normalised embeddings of the frozen base encoder
    probe.py      logistic regression on those embeddings (a linear probe)
    zero_shot.py  cosine similarity of each text to each label's description

`chance` (the base model with an untrained head) and `base` (a causal LM without its
adapter) are scored by the evaluator like the model itself (models.load_baseline). `chance`
is reported but never counts as the strongest baseline: nobody should mistake it for one.
"""

from __future__ import annotations

NOT_A_BASELINE = frozenset({"chance"})
"""Reported, but never the baseline a model is compared with."""

ENCODER_BASELINES = ("probe", "zero-shot")
FITTED_BASELINES = ("majority", "tfidf", "probe")
