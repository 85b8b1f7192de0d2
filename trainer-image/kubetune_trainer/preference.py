"""Direct Preference Optimization (Rafailov et al. 2023, arXiv:2305.18290), the loss TRL's
DPOTrainer computes with its default `loss_type="sigmoid"`, for kubetune's own training loop.

A batch holds n pairs as 2n sequences, the chosen ones first: [chosen_1..n, rejected_1..n],
each labelled like a completion example (prompt tokens -100). A sequence's log-probability is
the sum over its completion tokens; the implicit reward of a completion is
beta * (log pi(y|x) - log pi_ref(y|x)), and the loss of a pair is
-log sigmoid(reward_chosen - reward_rejected). tests/trainer/test_preference.py checks this
against TRL's DPOTrainer on the same batch.

The reference model costs no second copy under LoRA: it is the same model with its adapters
disabled (peft's `disable_adapter()`), as TRL does for a PEFT model without a ref_model. Full
finetuning keeps a frozen copy of the base.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch
import torch.nn.functional as F

from .data.encode import IGNORE_INDEX


def sequence_logps(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Per sequence: the summed log-probability of its target tokens (labels != -100).

    Only target positions are upcast and normalised: the full fp32 log-softmax over the
    vocabulary is the largest tensor of a step.
    """
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    rows = keep.nonzero(as_tuple=True)[0]
    token_logps = torch.log_softmax(logits[:, :-1][keep].float(), dim=-1)
    token_logps = token_logps.gather(1, targets[keep].unsqueeze(1)).squeeze(1)
    return torch.zeros(labels.shape[0], dtype=token_logps.dtype,
                       device=logits.device).index_add(0, rows, token_logps)


def dpo_loss(
    policy_logps: torch.Tensor, reference_logps: torch.Tensor, beta: float
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(per-pair loss, chosen rewards, rejected rewards) from per-sequence log-probabilities
    of a [chosen..., rejected...] batch under the policy and the reference."""
    policy_chosen, policy_rejected = policy_logps.chunk(2)
    reference_chosen, reference_rejected = reference_logps.chunk(2)
    chosen_ratio = policy_chosen - reference_chosen
    rejected_ratio = policy_rejected - reference_rejected
    losses = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio))
    return losses, beta * chosen_ratio.detach(), beta * rejected_ratio.detach()


@contextmanager
def reference_of(model, frozen_copy=None):
    """The reference model for a forward pass: `frozen_copy` when there is one (full
    finetuning), else `model` with its LoRA adapters disabled."""
    if frozen_copy is not None:
        yield frozen_copy
        return
    with model.disable_adapter():
        yield model


def frozen_copy(model, dtype: torch.dtype):
    """A frozen, evaluation-mode copy of `model` in `dtype` (the reference of a full DPO run)."""
    import copy

    reference = copy.deepcopy(model).to(dtype=dtype)
    reference.eval()
    reference.requires_grad_(False)
    return reference
