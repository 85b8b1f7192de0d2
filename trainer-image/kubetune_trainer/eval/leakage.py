"""Leakage: evaluation examples that also occur in the training data, which inflate scores.

Two checks, both before anything is scored:
- exact: the same text after normalisation (Unicode NFKC, lower case, punctuation and
  repeated whitespace removed);
- near-duplicate: Jaccard similarity of the character 5-gram sets >= 0.8 (a reworded or
  re-punctuated copy). Computed for all pairs at once as a sparse product of binary n-gram
  matrices (scikit-learn's CountVectorizer), in blocks of evaluation rows, so memory is bounded
  by the block and not by |eval| x |train|.
"""

from __future__ import annotations

import re
import string
import unicodedata
from dataclasses import dataclass, field

import numpy as np

NEAR_THRESHOLD = 0.8
NGRAM = 5
BLOCK = 1024  # evaluation rows per sparse product
EXAMPLES = 20  # leaked pairs kept in the report
TEXT_CHARS = 300

_PUNCTUATION = str.maketrans("", "", string.punctuation)
_SPACES = re.compile(r"\s+")


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower().translate(_PUNCTUATION)
    return _SPACES.sub(" ", text).strip()


@dataclass
class Leak:
    index: int  # into the evaluation texts
    training_index: int
    similarity: float  # 1.0 for an exact (normalised) match


@dataclass
class Leakage:
    exact: list[Leak] = field(default_factory=list)
    near: list[Leak] = field(default_factory=list)  # near-duplicates that are not exact

    @property
    def any(self) -> bool:
        return bool(self.exact or self.near)


def find_leaks(eval_texts: list[str], training_texts: list[str],
               threshold: float = NEAR_THRESHOLD) -> Leakage:
    """Each evaluation text's closest training text, when it is a copy or a near-copy."""
    from sklearn.feature_extraction.text import CountVectorizer

    result = Leakage()
    if not eval_texts or not training_texts:
        return result
    eval_norm = [normalise(t) for t in eval_texts]
    train_norm = [normalise(t) for t in training_texts]
    first_seen: dict[str, int] = {}
    for j, text in enumerate(train_norm):
        first_seen.setdefault(text, j)
    exact = set()
    for i, text in enumerate(eval_norm):
        if text in first_seen:
            exact.add(i)
            result.exact.append(Leak(i, first_seen[text], 1.0))
    vectorizer = CountVectorizer(analyzer="char", ngram_range=(NGRAM, NGRAM), binary=True,
                                 lowercase=False, dtype=np.int32)
    try:
        train_matrix = vectorizer.fit_transform(train_norm)
    except ValueError:  # every training text is shorter than an n-gram
        return result
    train_sizes = np.asarray(train_matrix.sum(axis=1)).ravel()
    train_t = train_matrix.T.tocsr()
    for start in range(0, len(eval_norm), BLOCK):
        block = vectorizer.transform(eval_norm[start:start + BLOCK])
        sizes = np.asarray(block.sum(axis=1)).ravel()
        shared = (block @ train_t).tocoo()
        best: dict[int, tuple[float, int]] = {}
        for row, col, count in zip(shared.row, shared.col, shared.data, strict=True):
            union = sizes[row] + train_sizes[col] - count
            similarity = count / union if union else 0.0
            if similarity >= threshold and similarity > best.get(row, (0.0, -1))[0]:
                best[row] = (float(similarity), int(col))
        for row, (similarity, col) in sorted(best.items()):
            if start + row not in exact:
                result.near.append(Leak(start + row, col, round(similarity, 4)))
    return result


def leakage_report(leakage: Leakage, eval_texts: list[str], eval_lines: list[int],
                   training_texts: list[str], training_lines: list[int],
                   training_uri: str) -> dict:
    """The report.json section: counts, method, and the first leaked pairs."""
    def example(leak: Leak, kind: str) -> dict:
        return {"kind": kind, "line": eval_lines[leak.index],
                "text": eval_texts[leak.index][:TEXT_CHARS],
                "trainingLine": training_lines[leak.training_index],
                "trainingText": training_texts[leak.training_index][:TEXT_CHARS],
                "similarity": leak.similarity}

    pairs = [example(leak, "exact") for leak in leakage.exact]
    pairs += [example(leak, "near") for leak in leakage.near]
    return {"checked": True, "trainingUri": training_uri, "trainingRows": len(training_texts),
            "exact": len(leakage.exact), "nearDuplicates": len(leakage.near),
            "method": f"exact after normalisation; near: character {NGRAM}-gram Jaccard >= "
                      f"{NEAR_THRESHOLD}",
            "examples": pairs[:EXAMPLES]}
