"""Turn raw rows into examples of one of the dataset formats.

| format         | default fields                     | trained on                      |
| chat           | messages: [{role, content}, ...]   | the assistant turns             |
| instruction    | instruction, input (optional), output | the output (as an assistant turn) |
| completion     | prompt, completion                 | the completion                  |
| text           | text                               | all of it                       |
| classification | text, label                        | the label (sequence-classification) |
| feedback       | prompt, response, rating, correction, chosen, rejected | see feedback.py |

`spec.dataset.fields` maps a format's field name to the file's column ({"text": "body"}).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from ..errors import InvalidDataset
from .readers import BadRow, Row

FORMATS = ("chat", "instruction", "completion", "text", "classification", "feedback")
DEFAULT_FIELDS: dict[str, dict[str, str]] = {
    "chat": {"messages": "messages"},
    "instruction": {"instruction": "instruction", "input": "input", "output": "output"},
    "completion": {"prompt": "prompt", "completion": "completion"},
    "text": {"text": "text"},
    "classification": {"text": "text", "label": "label"},
    "feedback": {name: name for name in ("prompt", "response", "rating", "correction", "chosen",
                                         "rejected")},
}
OPTIONAL_FIELDS = {"input"}
ROLES = ("system", "user", "assistant")
# ShareGPT-style conversations ({"from": "human", "value": ...}) are common; accept them.
_SHAREGPT_ROLES = {"human": "user", "gpt": "assistant", "system": "system", "user": "user",
                   "assistant": "assistant"}


@dataclass
class Example:
    """One usable record. Chat and instruction rows become `messages`."""

    line: int
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    completion: str | None = None
    text: str | None = None
    label: str | int | None = None
    chosen: str | None = None
    """A preference pair (feedback format, method dpo): the preferred completion of `prompt`."""
    rejected: str | None = None
    """... and the completion it is preferred over."""
    extra: dict = field(default_factory=dict)

    @property
    def is_pair(self) -> bool:
        return self.chosen is not None

    def content_key(self) -> str:
        """The example's content with whitespace normalised: equal keys are duplicates."""
        messages = [(m["role"], normalise(m["content"])) for m in self.messages or []]
        content = [messages, *(normalise(value) if isinstance(value, str) else value
                               for value in (self.prompt, self.completion, self.text, self.label,
                                             self.chosen, self.rejected))]
        return json.dumps(content, ensure_ascii=False)

    def is_empty(self) -> bool:
        if self.is_pair:
            return not self.chosen.strip() or not (self.rejected or "").strip()
        if self.messages is not None:
            return not any(m["content"].strip() for m in self.messages if m["role"] == "assistant")
        if self.prompt is not None or self.completion is not None:
            return not (self.completion or "").strip()
        return not (self.text or "").strip()


def normalise(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def resolve_fields(fmt: str, mapping: dict[str, str] | None) -> dict[str, str]:
    fields = dict(DEFAULT_FIELDS[fmt])
    for name, column in (mapping or {}).items():
        if name not in fields and not (fmt == "chat" and name in ("role", "content")):
            raise InvalidDataset(
                f"spec.dataset.fields: {name!r} is not a field of format {fmt} "
                f"(fields: {', '.join(fields)})"
            )
        fields[name] = column
    return fields


def detect_format(rows: list[Row], task: str, mapping: dict[str, str] | None) -> str:
    """Guess the format from the columns of the first rows (after the field mapping)."""
    if task == "sequence-classification":
        return "classification"
    columns: set[str] = set()
    for row in rows[:20]:
        columns.update(row.values)
    renamed = {column: name for name, column in (mapping or {}).items()}
    columns = {renamed.get(c, c) for c in columns}
    if "messages" in columns or "conversations" in columns:
        return "chat"
    if {"chosen", "rejected"} <= columns or {"response", "rating"} <= columns:
        return "feedback"
    if {"instruction", "output"} <= columns:
        return "instruction"
    if {"prompt", "completion"} <= columns:
        return "completion"
    if "text" in columns:
        return "text"
    raise InvalidDataset(
        f"cannot tell the dataset format from its columns {sorted(columns)}; set "
        "spec.dataset.format (chat, instruction, completion, text, classification, feedback) and "
        "spec.dataset.fields"
    )


def to_examples(
    rows: list[Row], fmt: str, mapping: dict[str, str] | None, *, preference: bool = False
) -> tuple[list[Example], list[BadRow]]:
    """Examples of the rows; a feedback file gives preference pairs when `preference` (method
    dpo), else supervised examples (see feedback.py for the rules)."""
    fields = resolve_fields(fmt, mapping)
    if fmt == "feedback":
        from . import feedback  # here, not at the top: feedback.py builds on this module

        records, bad = [], []
        for row in rows:
            result = feedback.parse(row, fields)
            (records if isinstance(result, feedback.Feedback) else bad).append(result)
        convert = feedback.preference_pairs if preference else feedback.sft_examples
        return convert(records), bad
    if fmt == "chat" and fields["messages"] == "messages" and rows and not any(
        "messages" in r.values for r in rows[:20]
    ) and any("conversations" in r.values for r in rows[:20]):
        fields["messages"] = "conversations"
    convert = _CONVERTERS[fmt]
    examples: list[Example] = []
    bad: list[BadRow] = []
    for row in rows:
        result = convert(row, fields)
        (examples if isinstance(result, Example) else bad).append(result)
    return examples, bad


def _get_text(row: Row, fields: dict[str, str], name: str) -> str | BadRow:
    column = fields[name]
    value = row.values.get(column)
    if value is None:
        if name in OPTIONAL_FIELDS:
            return ""
        return BadRow(row.line, "missing field", f"line {row.line}: missing field {column!r}")
    if not isinstance(value, str):
        return BadRow(row.line, "wrong type",
                      f"line {row.line}: field {column!r} is {type(value).__name__}, not text")
    return value


def _chat(row: Row, fields: dict[str, str]) -> Example | BadRow:
    column = fields["messages"]
    raw = row.values.get(column)
    if raw is None:
        return BadRow(row.line, "missing field", f"line {row.line}: missing field {column!r}")
    role_key, content_key = fields.get("role", "role"), fields.get("content", "content")
    if isinstance(raw, str):  # a CSV cell holding JSON
        try:
            raw = json.loads(raw)
        except json.JSONDecodeError:
            return BadRow(row.line, "invalid messages", f"line {row.line}: messages is not JSON")
    if not isinstance(raw, list) or not raw:
        return BadRow(row.line, "invalid messages", f"line {row.line}: messages is not a list")
    messages = []
    for message in raw:
        if not isinstance(message, dict):
            return BadRow(row.line, "invalid messages",
                          f"line {row.line}: a message is not an object")
        role = message.get(role_key, message.get("from"))
        content = message.get(content_key, message.get("value"))
        role = _SHAREGPT_ROLES.get(role) if isinstance(role, str) else None
        if role is None or not isinstance(content, str):
            return BadRow(row.line, "invalid messages",
                          f"line {row.line}: each message needs a role ({', '.join(ROLES)}) "
                          "and text content")
        messages.append({"role": role, "content": content})
    if not any(m["role"] == "assistant" for m in messages):
        return BadRow(row.line, "invalid messages", f"line {row.line}: no assistant message")
    return Example(row.line, messages=messages)


def _instruction(row: Row, fields: dict[str, str]) -> Example | BadRow:
    values = {}
    for name in ("instruction", "input", "output"):
        value = _get_text(row, fields, name)
        if isinstance(value, BadRow):
            return value
        values[name] = value
    user = values["instruction"]
    if values["input"].strip():
        user = f"{user}\n\n{values['input']}"
    messages = [{"role": "user", "content": user},
                {"role": "assistant", "content": values["output"]}]
    return Example(row.line, messages=messages)


def _completion(row: Row, fields: dict[str, str]) -> Example | BadRow:
    prompt = _get_text(row, fields, "prompt")
    if isinstance(prompt, BadRow):
        return prompt
    completion = _get_text(row, fields, "completion")
    if isinstance(completion, BadRow):
        return completion
    return Example(row.line, prompt=prompt, completion=completion)


def _text(row: Row, fields: dict[str, str]) -> Example | BadRow:
    text = _get_text(row, fields, "text")
    return text if isinstance(text, BadRow) else Example(row.line, text=text)


def _classification(row: Row, fields: dict[str, str]) -> Example | BadRow:
    text = _get_text(row, fields, "text")
    if isinstance(text, BadRow):
        return text
    column = fields["label"]
    label = row.values.get(column)
    if label is None or (isinstance(label, str) and not label.strip()):
        return BadRow(row.line, "missing field", f"line {row.line}: missing field {column!r}")
    if isinstance(label, bool) or not isinstance(label, (str, int)):
        if isinstance(label, float) and label.is_integer():
            label = int(label)
        else:
            return BadRow(row.line, "unknown label", f"line {row.line}: label {label!r}")
    return Example(row.line, text=text, label=label.strip() if isinstance(label, str) else label)


_CONVERTERS = {"chat": _chat, "instruction": _instruction, "completion": _completion,
               "text": _text, "classification": _classification}
