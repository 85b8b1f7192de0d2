"""Running a model over the evaluation set in length-sorted batches (never one by one).

    classify(...)        the probability of each class, per example
    token_losses(...)    summed teacher-forced loss and token count over each answer
    generate(...)        greedy answers, up to max_new_tokens each

Each returns its results in dataset order. Batches hold at most `batch_size` examples and
`max_tokens` padded tokens, so a few very long examples cannot run the device out of memory.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from ..data.batches import collate_padded
from ..data.encode import IGNORE_INDEX, Encoded
from .batching import length_sorted_batches, scatter

MODEL_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def _inputs(batch: dict, device: torch.device) -> dict:
    return {key: batch[key].to(device) for key in MODEL_INPUTS if key in batch}


@torch.inference_mode()
def classify(model, items: list[Encoded], *, pad_id: int, device: torch.device,
             batch_size: int, max_tokens: int) -> np.ndarray:
    """(examples, classes) probabilities, float64, in dataset order."""
    batches = length_sorted_batches([len(i.input_ids) for i in items], batch_size, max_tokens)
    probabilities = []
    for indices in batches:
        batch = collate_padded([items[i] for i in indices], pad_id)
        rows = model(**_inputs(batch, device)).logits.float().softmax(-1).double().cpu().numpy()
        probabilities.append(list(rows))
    return np.stack(scatter(batches, probabilities, len(items)))


@torch.inference_mode()
def token_losses(model, items: list[Encoded], *, pad_id: int, device: torch.device,
                 batch_size: int, max_tokens: int) -> list[tuple[float, int]]:
    """(sum of the token losses, number of target tokens) per example.

    Token t is predicted from tokens < t; only tokens with a label (the answer) count, the
    same targets the trainer's loss uses.
    """
    batches = length_sorted_batches([len(i.input_ids) for i in items], batch_size, max_tokens)
    results = []
    for indices in batches:
        batch = collate_padded([items[i] for i in indices], pad_id)
        logits = model(**_inputs(batch, device), use_cache=False).logits
        targets = batch["labels"][:, 1:].to(device)
        keep = targets != IGNORE_INDEX
        # Upcast only the target positions: full-vocabulary fp32 logits would be the
        # largest tensor of the run.
        losses = F.cross_entropy(logits[:, :-1][keep].float(), targets[keep], reduction="none")
        rows = keep.nonzero()[:, 0]
        sums = torch.zeros(len(indices), dtype=torch.float64, device=device)
        sums.index_add_(0, rows, losses.double())
        counts = keep.sum(dim=1)
        results.append(list(zip(sums.tolist(), counts.tolist(), strict=True)))
    return scatter(batches, results, len(items))


def _eos_ids(model, tokenizer) -> set[int]:
    configured = getattr(model.generation_config, "eos_token_id", None)
    ids = set(configured if isinstance(configured, list) else [configured])
    ids.add(tokenizer.eos_token_id)
    return {i for i in ids if i is not None}


@torch.inference_mode()
def generate(model, tokenizer, prompts: list[list[int]], *, device: torch.device,
             batch_size: int, max_new_tokens: int, max_length: int) -> list[str]:
    """Greedy answers to tokenized prompts, decoded without special tokens."""
    from transformers import GenerationConfig

    eos = _eos_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id
    config = GenerationConfig(
        # Always explicit: without max_new_tokens generate() stops after 24 tokens; and
        # greedy even if the checkpoint's generation_config.json asks for sampling.
        max_new_tokens=max_new_tokens, do_sample=False, num_beams=1,
        pad_token_id=pad_id, eos_token_id=sorted(eos) or None,
    )
    # Room for the answer: a prompt too long for it keeps its end, nearest the answer.
    room = max(1, max_length - max_new_tokens)
    prompts = [p[-room:] if len(p) > room else p for p in prompts]
    batches = length_sorted_batches([len(p) for p in prompts], batch_size)
    answers = []
    for indices in batches:
        width = max(len(prompts[i]) for i in indices)
        # Left padding: every prompt ends where generation starts.
        ids = [[pad_id] * (width - len(prompts[i])) + prompts[i] for i in indices]
        mask = [[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in indices]
        output = model.generate(input_ids=torch.tensor(ids, device=device),
                                attention_mask=torch.tensor(mask, device=device),
                                generation_config=config)
        texts = []
        for row in output[:, width:].tolist():
            end = next((k for k, token in enumerate(row) if token in eos), len(row))
            texts.append(tokenizer.decode(row[:end], skip_special_tokens=True).strip())
        answers.append(texts)
    return scatter(batches, answers, len(prompts))
