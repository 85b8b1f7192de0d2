"""The GPU fast path: which attention kernel, Liger kernels, AdamW implementation and
torch.compile a run uses, chosen once at start from `hyperparameters.fastPath` and what the
machine has.

`choose` is pure: (settings, Machine, the run's shape) -> Choice, or an InvalidConfig naming
the field when a forced ("on" or a named kernel) option cannot be had. `probe` is the one
place that looks at the machine (CUDA, compute capability, installed kernel packages); the
`apply_*` functions change a loaded model. `Choice.report` is what the trainer puts into its
result, and the operator copies into status.result.fastPath.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass, field

from .errors import InvalidConfig

log = logging.getLogger(__name__)

FIELD = "hyperparameters.fastPath"
FLASH = ("flash_attention_2", "flash_attention_3")
VARLEN = (*FLASH, "flex_attention")  # packed rows without an (L x L) mask
LIGER_KERNELS = ("fused_linear_cross_entropy", "rms_norm", "swiglu", "rope")


@dataclass(frozen=True)
class Machine:
    """What this process can run (from `probe`; tests build their own)."""

    cuda: bool = False
    capability: tuple[int, int] | None = None  # CUDA compute capability of this rank's GPU
    flash_attn_2: bool = False  # the flash-attn package (>= 2.3.3), with CUDA
    flash_attn_3: bool = False  # the flash-attn-3 package (flash_attn_interface), with CUDA
    flex_attention: bool = False  # torch.nn.attention.flex_attention (torch >= 2.5)
    triton: bool = False  # flex_attention's GPU kernels are generated with triton
    liger: bool = False  # the liger-kernel package (triton kernels: GPU only)


@dataclass(frozen=True)
class Choice:
    attention: str
    liger: bool
    optimizer: str  # adamw-fused, adamw-foreach or adamw-8bit
    compile: bool
    precision: str  # accelerate's mixed_precision: bf16, fp16 or no
    packing: bool
    notes: tuple[str, ...] = field(default=())
    attention_forced: bool = False  # named in the spec: a model that cannot run it fails

    @property
    def varlen(self) -> bool:
        return self.attention in VARLEN

    @property
    def flatten(self) -> bool:
        """flash-attention finds packed examples from the position ids only in a batch of
        one row (transformers' _is_packed_sequence): packed rows go end to end."""
        return self.attention in FLASH and self.packing

    @property
    def fixed_width(self) -> bool:
        """flex_attention is compiled per shape (transformers compiles it with
        dynamic=False): packed rows padded to maxSeqLength give it one shape."""
        return self.attention == "flex_attention" and self.packing

    def report(self, *, attention: str, liger: list[str], compiled: bool) -> dict:
        """status.result.fastPath: what actually ran (attention and liger as applied)."""
        report = {
            "attention": attention,
            "liger": liger,
            "optimizer": self.optimizer,
            "compiled": compiled,
            "precision": "fp32" if self.precision == "no" else self.precision,
            "notes": [note[:256] for note in self.notes[:16]],
        }
        if self.packing:
            report["packedAttention"] = "varlen" if attention in VARLEN else "mask"
        return report


def probe() -> Machine:
    """The machine as it is: the edge the unit tests replace (no GPU exists where they run)."""
    import torch
    from transformers.utils import import_utils

    cuda = torch.cuda.is_available()
    return Machine(
        cuda=cuda,
        capability=torch.cuda.get_device_capability() if cuda else None,
        flash_attn_2=import_utils.is_flash_attn_2_available(),
        flash_attn_3=import_utils.is_flash_attn_3_available(),
        flex_attention=importlib.util.find_spec("torch.nn.attention.flex_attention") is not None,
        triton=importlib.util.find_spec("triton") is not None,
        liger=importlib.util.find_spec("liger_kernel") is not None,
    )


def choose(settings, machine: Machine, *, task: str, packing: bool, precision: str,
           optimizer: str) -> Choice:
    """The fast path for a run. `settings` is hyperparameters.fastPath; `precision` is
    accelerate's mixed_precision (bf16, fp16, no); `optimizer` is hyperparameters.optimizer."""
    notes: list[str] = []
    attention = _attention(settings.attention, machine, task=task, precision=precision,
                           notes=notes)
    liger = _liger(settings.liger, machine, task=task, notes=notes)
    return Choice(
        attention=attention,
        liger=liger,
        optimizer=_optimizer(settings.fused_optimizer, machine, optimizer=optimizer, notes=notes),
        compile=_compile(settings.compile, notes=notes),
        precision=precision,
        packing=packing,
        notes=tuple(notes),
        attention_forced=settings.attention != "auto",
    )


def _attention(requested: str, machine: Machine, *, task: str, precision: str,
               notes: list[str]) -> str:
    half = precision in ("bf16", "fp16")
    major = machine.capability[0] if machine.capability else 0
    why_not = {
        "flash_attention_3": (
            "needs a GPU" if not machine.cuda else
            "needs the flash-attn-3 package" if not machine.flash_attn_3 else
            "needs a Hopper GPU (compute capability 9.x)" if major != 9 else
            "needs bf16 or fp16 precision" if not half else None),
        "flash_attention_2": (
            "needs a GPU" if not machine.cuda else
            "needs the flash-attn package" if not machine.flash_attn_2 else
            "needs compute capability 8.0 or newer" if major < 8 else
            "needs bf16 or fp16 precision" if not half else None),
        "flex_attention": (
            "needs torch >= 2.5" if not machine.flex_attention else
            # torch: "FlexAttention does not support backward on CPU".
            "needs a GPU (torch has no flex_attention backward on CPU)" if not machine.cuda
            else None),
    }
    if requested != "auto":
        problem = why_not.get(requested)
        if problem:
            raise InvalidConfig(f"{FIELD}.attention {requested} {problem}; use auto or sdpa")
        return requested
    if task != "causal-lm":
        return "sdpa"  # padded classification batches gain little; sdpa is every model's
    for candidate in ("flash_attention_3", "flash_attention_2"):
        if why_not[candidate] is None:
            return candidate
    if machine.cuda and machine.flex_attention and machine.triton:
        return "flex_attention"
    notes.append("attention sdpa: " + (
        "no GPU (flash and flex kernels are for GPUs)" if not machine.cuda else
        f"flash_attention_2 {why_not['flash_attention_2']}; flex_attention needs triton"))
    return "sdpa"


def _liger(requested: str, machine: Machine, *, task: str, notes: list[str]) -> bool:
    problem = ("needs a GPU" if not machine.cuda else
               "needs the liger-kernel package" if not machine.liger else
               "is for causal-lm" if task != "causal-lm" else None)
    if requested == "on" and problem:
        raise InvalidConfig(f"{FIELD}.liger on: Liger {problem}; use auto or off")
    if requested == "auto" and problem and task == "causal-lm":
        notes.append(f"liger off: {problem}")
    return requested != "off" and problem is None


def _optimizer(requested: str, machine: Machine, *, optimizer: str, notes: list[str]) -> str:
    if optimizer == "adamw-8bit":
        return "adamw-8bit"  # bitsandbytes' own kernel; fused AdamW does not apply
    if requested == "on":
        return "adamw-fused"  # torch has fused AdamW for CUDA and (since 2.4) CPU tensors
    if requested == "auto" and machine.cuda:
        return "adamw-fused"
    return "adamw-foreach"


def _compile(requested: str, *, notes: list[str]) -> bool:
    if requested == "auto":
        notes.append("compile off: auto leaves torch.compile off; set fastPath.compile on")
    return requested == "on"


# ------------------------------------------------------------------------------ apply


def apply_attention(model, choice: Choice) -> tuple[str, str | None]:
    """Switch the loaded model to the chosen attention; returns (what it runs, a note or None).
    An automatic choice the model class does not support stays on the model's own (sdpa) with
    a note; a forced one fails naming the field."""
    current = model.config._attn_implementation
    if choice.attention == current or choice.attention == "sdpa":
        return current, None
    try:
        model.set_attn_implementation(choice.attention)
    except (ValueError, ImportError) as error:
        message = (str(error).strip().splitlines() or [type(error).__name__])[0][:160]
        if choice.attention_forced:
            raise InvalidConfig(f"{FIELD}.attention {choice.attention}: {message}") from error
        return current, f"attention {current}: {choice.attention} refused: {message}"
    return model.config._attn_implementation, None


def apply_liger(model) -> list[str]:
    """Liger's kernels on this model instance (before LoRA wraps it), as transformers'
    Trainer applies them; returns the kernels applied (none for unsupported model types)."""
    from liger_kernel.transformers.monkey_patch import (
        MODEL_TYPE_TO_APPLY_LIGER_FN,
        _apply_liger_kernel_to_instance,
    )

    model_type = getattr(model.config, "model_type", None)
    if model_type not in MODEL_TYPE_TO_APPLY_LIGER_FN:
        log.info("liger: no kernels for model type %s", model_type)
        return []
    _apply_liger_kernel_to_instance(model=model, fused_linear_cross_entropy=True,
                                    cross_entropy=False, rms_norm=True, swiglu=True, rope=True)
    return list(LIGER_KERNELS)
