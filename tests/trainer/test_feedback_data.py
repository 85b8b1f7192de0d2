"""The feedback format: user ratings, corrections and explicit preferences turned into
supervised examples (method lora/full) and preference pairs (method dpo), through the same
cleaning, de-duplication and data report as every other format."""

from __future__ import annotations

import pytest
from kubetune_trainer.data import load_examples
from kubetune_trainer.data.feedback import rating_quality
from kubetune_trainer.data.formats import detect_format
from kubetune_trainer.data.readers import Row

from .helpers import write_jsonl

ROWS = [
    {"prompt": "p1", "response": "good answer", "rating": 5},                      # line 1
    {"prompt": "p1", "response": "bad answer", "rating": 1},                       # line 2
    {"prompt": "p2", "response": "wrong", "rating": "down", "correction": "right"}, # line 3
    {"prompt": "p3", "chosen": "yes", "rejected": "no"},                           # line 4
    {"prompt": "p4", "response": "meh", "rating": 3},                              # line 5
    {"prompt": "p5", "response": "fine", "rating": True, "correction": "finer"},   # line 6
]


def examples(tmp_path, rows, *, preference, **options):
    path = write_jsonl(tmp_path / "feedback.jsonl", rows)
    return load_examples(f"file://{path}", format="feedback", preference=preference, **options)


def as_sft(loaded):
    return [(e.line, e.prompt, e.completion) for e in loaded.examples]


def as_pairs(loaded):
    return [(e.line, e.prompt, e.chosen, e.rejected) for e in loaded.examples]


@pytest.mark.parametrize(("rating", "quality"), [
    (5, "good"), (4, "good"), (4.0, "good"), ("4", "good"), (3, "neutral"), (2, "poor"),
    (1, "poor"), (True, "good"), (False, "poor"), ("up", "good"), ("Thumbs_Down", "poor"),
    ("\N{THUMBS UP SIGN}", "good"), (0, None), (6, None), ("great", None), (None, None),
])
def test_ratings_are_thumbs_or_one_to_five_with_four_and_up_good_and_two_and_down_poor(
        rating, quality):
    assert rating_quality(rating) == quality


def test_supervised_examples_are_corrections_and_well_rated_responses(tmp_path):
    loaded = examples(tmp_path, ROWS, preference=False)
    assert as_sft(loaded) == [
        (1, "p1", "good answer"),  # rated 5
        (3, "p2", "right"),        # a correction
        (6, "p5", "finer"),        # a correction, even of a liked response
        (6, "p5", "fine"),         # thumbs up
    ]  # not: the poorly rated and neutral responses, nor the explicit pair


def test_preference_pairs_follow_the_three_rules(tmp_path):
    loaded = examples(tmp_path, ROWS, preference=True)
    assert sorted(as_pairs(loaded)) == [
        (1, "p1", "good answer", "bad answer"),  # well rated over poorly rated, same prompt
        (3, "p2", "right", "wrong"),             # a correction over the disliked response
        (4, "p3", "yes", "no"),                  # explicit chosen/rejected
    ]  # not: p5's correction over a liked response, nor the neutral p4


def test_well_and_poorly_rated_responses_pair_across_rows_by_normalised_prompt(tmp_path):
    rows = [{"prompt": "what  is it?", "response": "a", "rating": 5},
            {"prompt": "what is it? ", "response": "b", "rating": 1},
            {"prompt": "what is it?", "response": "c", "rating": 2},
            {"prompt": "another", "response": "d", "rating": 1}]
    pairs = sorted((e.chosen, e.rejected) for e in examples(tmp_path, rows, preference=True).examples)
    assert pairs == [("a", "b"), ("a", "c")]


def test_bad_rows_are_counted_by_reason_in_the_report(tmp_path):
    rows = [*ROWS,
            {"prompt": "p6", "response": "x", "rating": 9},           # invalid rating
            {"prompt": "p7", "response": "x"},                        # no rating, no correction
            {"prompt": "p8", "chosen": "only one side"},              # half a pair
            {"response": "x", "rating": 5},                           # no prompt
            {"prompt": "p9", "response": 3, "rating": 5}]             # not text
    loaded = examples(tmp_path, rows, preference=True)
    report = loaded.report.to_json()
    assert report["rowsIn"] == 11
    assert report["dropped"] == {"invalid rating": 2, "missing field": 2, "wrong type": 1}
    assert "line 7" in report["droppedExamples"]["invalid rating"][0]


def test_duplicate_empty_and_identical_pairs_are_cleaned(tmp_path):
    rows = [{"prompt": "p", "chosen": "yes", "rejected": "no"},
            {"prompt": " p", "chosen": "yes ", "rejected": "no"},   # duplicate after whitespace
            {"prompt": "q", "chosen": "same", "rejected": " same"},  # nothing to prefer
            {"prompt": "r", "chosen": "", "rejected": "no"}]        # empty
    loaded = examples(tmp_path, rows, preference=True, drop_duplicates=True)
    assert as_pairs(loaded) == [(1, "p", "yes", "no")]
    assert dict(loaded.report.dropped) == {"duplicate": 1, "identical pair": 1, "empty": 1}
    kept = examples(tmp_path, rows, preference=True, drop_duplicates=False)
    assert len(kept.examples) == 2


def test_feedback_is_detected_from_its_columns():
    assert detect_format([Row(1, {"prompt": "p", "response": "r", "rating": 1})],
                         "causal-lm", None) == "feedback"
    assert detect_format([Row(1, {"prompt": "p", "chosen": "a", "rejected": "b"})],
                         "causal-lm", None) == "feedback"
    assert detect_format([Row(1, {"question": "p", "answer": "r", "stars": 1})], "causal-lm",
                         {"prompt": "question", "response": "answer", "rating": "stars"}) == "feedback"


def test_field_mapping_renames_feedback_columns(tmp_path):
    rows = [{"q": "p", "a": "good", "stars": 5}, {"q": "p", "a": "bad", "stars": 1}]
    path = write_jsonl(tmp_path / "f.jsonl", rows)
    loaded = load_examples(f"file://{path}", format="feedback", preference=True,
                           fields={"prompt": "q", "response": "a", "rating": "stars"})
    assert as_pairs(loaded) == [(1, "p", "good", "bad")]
