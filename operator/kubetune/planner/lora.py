"""Which layers LoRA adapts, and how many parameters that makes trainable.

The rules follow peft 0.21 (`get_peft_model` with a `LoraConfig`), checked against it in
tests/planner/test_lora.py:
- a target matches a module when its path equals it or ends with "." + it;
- "all-linear" collects the last name part of every linear layer (so BERT's `pooler.dense`
  is adapted along with every other `dense`), minus the output layer (`lm_head`, or the
  classifier for sequence classification);
- for sequence classification the head is in `modules_to_save`: a trainable copy, never
  adapted itself;
- each adapted layer adds `r * (in_features + out_features)` (lora_A and lora_B, no bias);
- MoE experts fused into 3-D parameters (transformers 5 Mixtral) are still adapted under
  their transformers 4 names (w1/w3 -> gate_up_proj, w2 -> down_proj, gate -> router):
  `r * experts * (in + out)`, with the rank multiplied by the number of fused names.
"""

from __future__ import annotations

from collections.abc import Sequence

from kubetune.planner.layout import Linear, ModelLayout, Task, Weight

ALL_LINEAR = "all-linear"


class UnknownTargetModules(ValueError):
    """LoRA target names that peft would refuse for this model."""


def _matches(name: str, target: str) -> bool:
    return name == target or name.endswith("." + target)


def resolve_targets(layout: ModelLayout, target_modules: Sequence[str]) -> set[str]:
    """The target names peft would use: "all-linear" expanded, others as given."""
    targets = set(target_modules)
    if ALL_LINEAR not in targets:
        return targets
    if targets != {ALL_LINEAR}:
        raise UnknownTargetModules(f"{ALL_LINEAR!r} cannot be combined with other module names")
    # Names found only inside the saved head could never be adapted: leave them out.
    names = {m.base_name for m in layout.linears if not _saved_module(layout, m.name)}
    if layout.head is not None:
        names.discard(layout.head)  # peft drops the output layer's own name
    for weight in layout.weights:
        names.update(weight.lora_names)
    return names


def _saved_module(layout: ModelLayout, name: str) -> bool:
    """Inside peft's `modules_to_save` (the classification head): copied, not adapted."""
    return layout.task is Task.SEQUENCE_CLASSIFICATION and layout.in_head(name)


def adapted_linears(layout: ModelLayout, target_modules: Sequence[str]) -> list[Linear]:
    """The linear layers that receive LoRA adapters."""
    targets = resolve_targets(layout, target_modules)
    _check_known(layout, targets)
    return [
        m
        for m in layout.linears
        if not _saved_module(layout, m.name) and any(_matches(m.name, t) for t in targets)
    ]


def adapted_expert_weights(layout: ModelLayout, target_modules: Sequence[str]) -> list[Weight]:
    """The MoE parameters that receive LoRA adapters (peft `target_parameters`)."""
    targets = resolve_targets(layout, target_modules)
    chosen = []
    for weight in layout.weights:
        hit = targets.intersection(weight.lora_names)
        if hit and hit != set(weight.lora_names):
            raise UnknownTargetModules(
                f"{', '.join(sorted(hit))} must be targeted together with "
                f"{', '.join(sorted(set(weight.lora_names) - hit))}: transformers fuses them"
            )
        if hit:
            chosen.append(weight)
    return chosen


def _check_known(layout: ModelLayout, targets: set[str]) -> None:
    adaptable = [m.name for m in layout.linears if not _saved_module(layout, m.name)]
    expert_names = {n for w in layout.weights for n in w.lora_names}
    unknown = sorted(
        t for t in targets if t not in expert_names and not any(_matches(n, t) for n in adaptable)
    )
    if unknown:
        known = sorted({n.rsplit(".", 1)[-1] for n in adaptable} | expert_names)
        raise UnknownTargetModules(
            f"{', '.join(unknown)} match no linear layer of this {layout.arch.family} model "
            f"(its linear layers: {', '.join(known)}; or {ALL_LINEAR!r})"
        )


def lora_trainable_parameters(
    layout: ModelLayout, r: int, target_modules: Sequence[str] = (ALL_LINEAR,)
) -> int:
    """What `peft_model.get_nb_trainable_parameters()[0]` reports for this LoRA setup."""
    if r <= 0:
        raise ValueError(f"LoRA rank must be > 0, got {r}")
    trainable = sum(r * (m.in_features + m.out_features) for m in adapted_linears(layout, target_modules))
    for w in adapted_expert_weights(layout, target_modules):
        rank = r * len(w.lora_names)
        trainable += rank * w.experts * (w.in_features + w.out_features)
    if layout.task is Task.SEQUENCE_CLASSIFICATION:
        trainable += layout.head_parameters
    return trainable
