"""How the ranks share the model: the one place that turns the resolved strategy into an
`accelerate.Accelerator`, and the sharded checkpoint files FSDP needs.

- ddp: accelerate's DistributedDataParallel (gloo on CPU, NCCL on GPUs); every rank holds a
  full replica, checkpoints are written by rank 0 (see `checkpointing.save`).
- fsdp: accelerate's FSDP plugin in FSDP2 mode (`torch.distributed.fsdp.fully_shard`), one
  unit per transformer block (the model's `_no_split_modules`), parameters resharded after
  each forward. Every rank holds 1/world of the weights, gradients and optimizer state, and
  writes its own part of the checkpoint with torch.distributed.checkpoint (DCP), which
  resumes on any number of ranks.
"""

from __future__ import annotations

from pathlib import Path

from .errors import InvalidConfig

SHARDED_FOLDER = "sharded"  # inside checkpoint-<step>/: DCP files of model and optimizer


def fsdp_plugin(*, cpu_offload: bool = False):
    """accelerate's FSDP2 plugin, as the trainer uses it. `cpu_offload` (resources.cpuOffload):
    sharded parameters, gradients and the optimizer step live on the CPU (CPUOffloadPolicy)."""
    from accelerate.utils import FullyShardedDataParallelPlugin

    return FullyShardedDataParallelPlugin(
        cpu_offload=cpu_offload,
        fsdp_version=2,
        auto_wrap_policy="transformer_based_wrap",  # blocks named in model._no_split_modules
        reshard_after_forward=True,  # ZeRO-3: gather each block again for backward
        state_dict_type="SHARDED_STATE_DICT",
        cpu_ram_efficient_loading=False,  # every rank loads the checkpoint itself
    )


def make_accelerator(strategy: str, *, cuda: bool, mixed_precision: str,
                     cpu_offload: bool = False):
    """The Accelerator for `strategy` (ddp or fsdp, never auto: the operator resolved it)."""
    from accelerate import Accelerator

    if strategy == "fsdp":
        if not cuda:
            # accelerate falls back to DDP for multi-process CPU runs; say so instead.
            raise InvalidConfig("resources.strategy fsdp needs GPUs; use ddp on CPU")
        return Accelerator(mixed_precision=mixed_precision,
                           fsdp_plugin=fsdp_plugin(cpu_offload=cpu_offload))
    if cpu_offload:
        raise InvalidConfig("resources.cpuOffload needs resources.strategy fsdp")
    if strategy != "ddp":
        raise InvalidConfig(f"resources.strategy must be ddp or fsdp, got {strategy!r}")
    # cpu=True is what makes a multi-process CPU launch use gloo instead of one process.
    return Accelerator(cpu=not cuda, mixed_precision=mixed_precision)


def save_sharded(folder: Path, model, optimizer) -> None:
    """Every rank writes its shards of the model and optimizer state (a collective call)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state},
             checkpoint_id=str(folder / SHARDED_FOLDER))


def load_sharded(folder: Path, model, optimizer) -> None:
    """Every rank reads its shards back, in place (a collective call; after sharding)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict, set_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer)
    state = {"model": model_state, "optimizer": optimizer_state}
    dcp.load(state, checkpoint_id=str(folder / SHARDED_FOLDER))
    set_state_dict(model, optimizer, model_state_dict=state["model"],
                   optim_state_dict=state["optimizer"])
