"""The `feedback` format: what users said about a deployed model's answers, turned into
training data.

A row is one of:
- a rated answer: `prompt`, `response`, `rating`, optionally `correction` (the answer the user
  wanted instead);
- an explicit preference: `prompt`, `chosen`, `rejected`.

`rating` is thumbs up/down (true/false, "up"/"down", "thumbs_up"/"thumbs_down", "+1"/"-1")
or a 1-5 score. A response is **well rated** with a thumbs up or a score of 4 or 5, **poorly
rated** with a thumbs down or a score of 1 or 2; a 3 is neutral (GOOD_SCORE, POOR_SCORE).

Supervised finetuning (method lora, qlora, full) trains on:
- every correction, as the completion of its prompt;
- every well-rated response.

Preference optimisation (method dpo) trains on pairs (prompt, chosen, rejected):
- every explicit chosen/rejected row;
- a correction over the response it corrects, unless that response was well rated;
- every well-rated response over every poorly rated one to the same prompt (prompts compared
  with whitespace normalised).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from .formats import Example, normalise
from .readers import BadRow, Row

FIELDS = ("prompt", "response", "rating", "correction", "chosen", "rejected")
GOOD_SCORE = 4
"""A 1-5 rating at or above this is a well-rated response."""
POOR_SCORE = 2
"""A 1-5 rating at or below this is a poorly rated response."""
_THUMBS = {"up": True, "thumbs_up": True, "thumbs-up": True, "+1": True, "\N{THUMBS UP SIGN}": True,
           "down": False, "thumbs_down": False, "thumbs-down": False, "-1": False,
           "\N{THUMBS DOWN SIGN}": False}


@dataclass(frozen=True)
class Feedback:
    """One parsed row: a rated response (with an optional correction) or an explicit pair."""

    line: int
    prompt: str
    response: str | None = None
    quality: str | None = None  # "good", "neutral" or "poor"
    correction: str | None = None
    chosen: str | None = None
    rejected: str | None = None


def rating_quality(value) -> str | None:
    """"good", "neutral" or "poor" for a thumb or a 1-5 score; None when it is neither."""
    if isinstance(value, bool):
        return "good" if value else "poor"
    if isinstance(value, str):
        text = value.strip().lower()
        if text in _THUMBS:
            return "good" if _THUMBS[text] else "poor"
        try:
            value = float(text)
        except ValueError:
            return None
    if isinstance(value, int | float) and 1 <= value <= 5:
        if value >= GOOD_SCORE:
            return "good"
        return "poor" if value <= POOR_SCORE else "neutral"
    return None


def parse(row: Row, fields: dict[str, str]) -> Feedback | BadRow:
    """A row of the feedback format, or why it cannot be used."""
    values = {}
    for name in FIELDS:
        value = row.values.get(fields[name])
        if value is not None and name != "rating" and not isinstance(value, str):
            return BadRow(row.line, "wrong type", f"line {row.line}: field {fields[name]!r} is "
                          f"{type(value).__name__}, not text")
        values[name] = value
    if values["prompt"] is None:
        return BadRow(row.line, "missing field", f"line {row.line}: missing field "
                      f"{fields['prompt']!r}")
    if values["chosen"] is not None or values["rejected"] is not None:
        if values["chosen"] is None or values["rejected"] is None:
            return BadRow(row.line, "missing field", f"line {row.line}: a preference needs both "
                          f"{fields['chosen']!r} and {fields['rejected']!r}")
        return Feedback(row.line, values["prompt"], chosen=values["chosen"],
                        rejected=values["rejected"])
    if values["response"] is None:
        return BadRow(row.line, "missing field", f"line {row.line}: needs {fields['response']!r} "
                      f"and {fields['rating']!r}, or {fields['chosen']!r} and "
                      f"{fields['rejected']!r}")
    quality = rating_quality(values["rating"])
    # A correction alone says enough (the response was not what the user wanted).
    if quality is None and (values["rating"] is not None or values["correction"] is None):
        return BadRow(row.line, "invalid rating", f"line {row.line}: {fields['rating']!r} must be "
                      f"thumbs up/down (true/false, up/down) or 1-5, got {values['rating']!r}")
    return Feedback(row.line, values["prompt"], response=values["response"],
                    quality=quality or "neutral", correction=values["correction"])


def sft_examples(records: list[Feedback]) -> list[Example]:
    """Corrections and well-rated responses, as prompt/completion examples."""
    examples = []
    for record in records:
        if record.correction is not None:
            examples.append(Example(record.line, prompt=record.prompt,
                                    completion=record.correction))
        if record.response is not None and record.quality == "good":
            examples.append(Example(record.line, prompt=record.prompt,
                                    completion=record.response))
    return examples


def preference_pairs(records: list[Feedback]) -> list[Example]:
    """(prompt, chosen, rejected) examples by the three rules of the module docstring."""
    pairs = []
    by_prompt: dict[str, dict[str, list[Feedback]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        if record.chosen is not None:
            pairs.append(_pair(record.line, record.prompt, record.chosen, record.rejected))
            continue
        if record.correction is not None and record.quality != "good":
            pairs.append(_pair(record.line, record.prompt, record.correction, record.response))
        by_prompt[normalise(record.prompt)][record.quality].append(record)
    for groups in by_prompt.values():
        for good in groups["good"]:
            for poor in groups["poor"]:
                pairs.append(_pair(good.line, good.prompt, good.response, poor.response))
    return pairs


def _pair(line: int, prompt: str, chosen: str, rejected: str) -> Example:
    return Example(line, prompt=prompt, chosen=chosen, rejected=rejected)
