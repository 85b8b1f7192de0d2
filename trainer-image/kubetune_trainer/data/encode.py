"""Tokenize examples into input ids and labels, with the loss only where the model should learn.

Causal LM: a label of -100 marks a token that is context, not target (system/user turns, the
prompt of a completion). The assistant turns, with the end-of-turn tokens that the chat
template puts after them, are the targets, so the model also learns to stop.

The first token of every example never carries a label: nothing inside the example predicts
it, and in a packed sequence the token before it belongs to another example.
"""

from __future__ import annotations

from dataclasses import dataclass

from .formats import Example

IGNORE_INDEX = -100

# Used when the tokenizer brings no chat template; saved with the tokenizer so that whoever
# serves the model formats prompts the same way.
DEFAULT_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


@dataclass
class Encoded:
    """A tokenized example. `labels` for causal LM, `label` for classification."""

    line: int
    input_ids: list[int]
    labels: list[int] | None = None
    label: int | None = None
    token_type_ids: list[int] | None = None

    @property
    def trainable_tokens(self) -> int:
        if self.labels is None:
            return 1
        return sum(1 for label in self.labels if label != IGNORE_INDEX)


def ensure_chat_template(tokenizer) -> None:
    if not getattr(tokenizer, "chat_template", None):
        tokenizer.chat_template = DEFAULT_CHAT_TEMPLATE


def ensure_pad_token(tokenizer) -> None:
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token


def chat_segments(tokenizer, messages: list[dict[str, str]]) -> list[tuple[str, bool]]:
    """Split the rendered conversation into (text, is_target) pieces.

    Each assistant turn is what rendering the conversation up to and including it adds to
    the rendering up to it with a generation prompt. Templates that are not prefix-consistent
    that way fall back to locating the message content in the rendered text.
    """

    def render(upto: int, generation_prompt: bool) -> str:
        return tokenizer.apply_chat_template(
            messages[:upto], tokenize=False, add_generation_prompt=generation_prompt
        )

    full = render(len(messages), False)
    segments: list[tuple[str, bool]] = []
    done = 0  # characters of `full` already placed in segments
    for index, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        try:
            prefix, through = render(index, True), render(index + 1, False)
        except Exception:  # some templates refuse a conversation that starts with assistant
            prefix = through = ""
        if (prefix and full.startswith(through) and through.startswith(prefix)
                and len(prefix) >= done):
            start, end = len(prefix), len(through)
        else:
            start = full.find(message["content"], done)
            if start < 0:
                continue
            end = start + len(message["content"])
        segments.append((full[done:start], False))
        segments.append((full[start:end], True))
        done = end
    segments.append((full[done:], False))
    return [(text, target) for text, target in segments if text]


def _tokens(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def _bos(tokenizer, first_text: str) -> list[int]:
    """A BOS token when the tokenizer itself adds one (as in pretraining) and the rendered text
    does not already start with it (chat templates often write it)."""
    bos = tokenizer.bos_token
    if bos is None or first_text.startswith(bos):
        return []
    adds_bos = tokenizer("a", add_special_tokens=True)["input_ids"][:1] == [tokenizer.bos_token_id]
    return [tokenizer.bos_token_id] if adds_bos else []


def encode_causal(tokenizer, example: Example) -> Encoded:
    if example.messages is not None:
        segments = chat_segments(tokenizer, example.messages)
    elif example.prompt is not None:
        eos = tokenizer.eos_token or ""
        segments = [(example.prompt, False), (example.completion + eos, True)]
    else:
        segments = [(example.text + (tokenizer.eos_token or ""), True)]
    input_ids = _bos(tokenizer, segments[0][0] if segments else "")
    labels = [IGNORE_INDEX] * len(input_ids)
    for text, target in segments:
        ids = _tokens(tokenizer, text)
        input_ids += ids
        labels += ids if target else [IGNORE_INDEX] * len(ids)
    if labels:
        labels[0] = IGNORE_INDEX
    return Encoded(example.line, input_ids, labels=labels)


@dataclass
class EncodedPair:
    """A tokenized preference pair: the prompt with the chosen completion and with the rejected
    one, each labelled like a completion example (targets: the completion and its EOS)."""

    line: int
    chosen: Encoded
    rejected: Encoded
    label: None = None  # nothing to stratify a split by

    @property
    def length(self) -> int:
        return max(len(self.chosen.input_ids), len(self.rejected.input_ids))

    @property
    def trainable_tokens(self) -> int:
        return self.chosen.trainable_tokens + self.rejected.trainable_tokens


def encode_pair(tokenizer, example: Example) -> EncodedPair:
    def side(completion: str) -> Encoded:
        return encode_causal(tokenizer, Example(example.line, prompt=example.prompt,
                                                completion=completion))

    return EncodedPair(example.line, side(example.chosen), side(example.rejected))


def encode_classification(tokenizer, example: Example, label_id: int, max_length: int) -> Encoded:
    encoding = tokenizer(example.text, truncation=True, max_length=max_length)
    return Encoded(
        example.line,
        list(encoding["input_ids"]),
        label=label_id,
        token_type_ids=list(encoding["token_type_ids"]) if "token_type_ids" in encoding else None,
    )


def fit_length(encoded: Encoded, limit: int, policy: str) -> Encoded | None:
    """Apply the over-length policy: truncate to `limit` tokens, or None to drop the example."""
    if len(encoded.input_ids) <= limit:
        return encoded
    if policy == "drop":
        return None
    encoded.input_ids = encoded.input_ids[:limit]
    if encoded.labels is not None:
        encoded.labels = encoded.labels[:limit]
    if encoded.token_type_ids is not None:
        encoded.token_type_ids = encoded.token_type_ids[:limit]
    return encoded
