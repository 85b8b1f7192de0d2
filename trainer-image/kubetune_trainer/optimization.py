"""Choices made once at start: device precision, optimizer and learning-rate schedule."""

from __future__ import annotations

import math

import torch

from .errors import InvalidConfig

SCHEDULERS = {"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}


def choose_precision(requested: str, *, cuda: bool, bf16_supported: bool) -> str:
    """Accelerate's mixed_precision value: "bf16", "fp16" or "no" (fp32)."""
    if requested == "auto":
        if not cuda:
            return "no"
        return "bf16" if bf16_supported else "fp16"
    if requested == "fp32":
        return "no"
    if requested == "fp16" and not cuda:
        raise InvalidConfig("precision fp16 needs a GPU; use auto, bf16 or fp32 on CPU")
    return requested


def weights_dtype(method: str, mixed_precision: str) -> torch.dtype:
    """dtype of the frozen base weights: 16-bit under adapters, fp32 master weights for full."""
    if method == "full" or mixed_precision == "no":
        return torch.float32
    return torch.bfloat16 if mixed_precision == "bf16" else torch.float16


def build_optimizer(model, *, name: str, learning_rate: float, weight_decay: float,
                    implementation: str = "adamw-foreach"):
    """AdamW over the trainable parameters; `implementation` (fastpath.Choice.optimizer):
    adamw-fused (one kernel per step), adamw-foreach (batched per-tensor ops), adamw-8bit."""
    decay, no_decay = [], []
    for parameter in model.parameters():
        if parameter.requires_grad:
            # Biases and norm scales are not decayed (the usual AdamW practice).
            (decay if parameter.ndim >= 2 else no_decay).append(parameter)
    groups = [{"params": decay, "weight_decay": weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw-8bit":
        if not torch.cuda.is_available():
            raise InvalidConfig("optimizer adamw-8bit needs a GPU (bitsandbytes); use adamw")
        try:
            import bitsandbytes as bnb
        except ImportError as error:
            raise InvalidConfig("optimizer adamw-8bit needs bitsandbytes in the image") from error
        return bnb.optim.AdamW8bit(groups, lr=learning_rate)
    if implementation == "adamw-fused":
        return torch.optim.AdamW(groups, lr=learning_rate, fused=True)
    return torch.optim.AdamW(groups, lr=learning_rate, foreach=True)


def build_scheduler(optimizer, *, name: str, warmup_ratio: float, total_steps: int):
    from transformers import get_scheduler

    return get_scheduler(
        SCHEDULERS[name],
        optimizer,
        num_warmup_steps=math.ceil(warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
