"""Checkpoints under output.uri/checkpoints/checkpoint-<step>/, to resume after preemption.

Each holds what an uninterrupted run would still have in memory at that step:

    weights.safetensors   trainable parameters (the adapters, or the whole model for full)
    optimizer.pt          optimizer state          scheduler.pt   learning-rate schedule
    sharded/              instead of the two above under FSDP: every rank's shards of the
                          weights and optimizer state (torch.distributed.checkpoint, see
                          parallel.py)
    rng.pt                torch/cuda/numpy/python random states (dropout continues unchanged)
    trainer_state.json    step, epoch, losses, early-stopping counters, and the uid of the
                          FinetuneJob that wrote it (jobUid); written (and uploaded) last, so
                          a checkpoint without it is incomplete and ignored

The data position is the step: the batch schedule is a function of (seed, step).

A run resumes only from its own FinetuneJob's checkpoints: a job deleted and created again
under the same name (a new uid), or another job pointed at the same output.uri, must not
continue a run it did not start. `claim` fails such a run with OutputInUse, or, with
output.overwrite, deletes the other job's checkpoints and starts clean.
"""

from __future__ import annotations

import json
import logging
import random
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from .errors import OutputInUse
from .storage import Destination

log = logging.getLogger(__name__)

FOLDER = "checkpoints"
STATE_FILE = "trainer_state.json"
_NAME = re.compile(r"^checkpoint-(\d+)$")


@dataclass
class Checkpoint:
    name: str
    folder: Path
    state: dict

    @property
    def step(self) -> int:
        return int(self.state["step"])


def completed_checkpoints(dest: Destination) -> list[str]:
    """Names of complete checkpoints, oldest first."""
    names = [n for n in dest.list_dirs(FOLDER) if _NAME.match(n)]
    names.sort(key=lambda n: int(_NAME.match(n).group(1)))
    return [n for n in names if dest.exists(FOLDER, n, STATE_FILE)]


def trainable_state(model) -> dict[str, torch.Tensor]:
    return {name: p.detach().cpu().contiguous()
            for name, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict:
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


def local_folder(dest: Destination, step: int) -> Path:
    return dest.local_dir(FOLDER, f"checkpoint-{step}")


def save(dest: Destination, *, step: int, model, optimizer, scheduler, state: dict,
         keep: int, rng_states: list[dict] | None = None, sharded: bool = False) -> str:
    """Write checkpoint-<step> (rank 0 only) and drop all but the newest `keep`.

    `rng_states` holds every rank's random state, in rank order (gathered by the caller):
    each rank draws its own dropout masks, and resumes with its own.
    """
    name = f"checkpoint-{step}"
    folder = dest.local_dir(FOLDER, name)
    (folder / STATE_FILE).unlink(missing_ok=True)
    if not sharded:  # sharded: every rank has written sharded/ already
        save_file(trainable_state(model), str(folder / "weights.safetensors"))
        torch.save(optimizer.state_dict(), folder / "optimizer.pt")
    torch.save(scheduler.state_dict(), folder / "scheduler.pt")
    torch.save({"ranks": rng_states or [rng_state()]}, folder / "rng.pt")
    (folder / STATE_FILE).write_text(json.dumps({**state, "step": step}, indent=2) + "\n")
    uri = dest.publish(FOLDER, name, last=(STATE_FILE,))
    for old in completed_checkpoints(dest)[:-keep]:
        dest.remove(FOLDER, old)
    log.info("checkpoint: saved step %d to %s", step, uri)
    return uri


def owner_of(dest: Destination, name: str) -> str | None:
    """The jobUid stamped into a complete checkpoint (None: written without one)."""
    text = dest.read_text(FOLDER, name, STATE_FILE)
    try:
        return json.loads(text or "{}").get("jobUid")
    except ValueError:
        return None


def claim(dest: Destination, job_uid: str | None, overwrite: bool) -> list[str]:
    """Make sure every checkpoint under dest is this job's before resuming; returns the
    names of other jobs' checkpoints that `overwrite` deleted.

    A run without a uid (the trainer run by hand, outside the operator) claims nothing. A
    checkpoint without a uid is another job's too: nothing says whose run it continues."""
    if job_uid is None:
        return []
    foreign = [(name, owner_of(dest, name)) for name in completed_checkpoints(dest)]
    foreign = [(name, owner) for name, owner in foreign if owner != job_uid]
    if not foreign:
        return []
    if not overwrite:
        name, owner = foreign[-1]
        raise OutputInUse(
            f"output.uri {dest.uri} holds checkpoints of another FinetuneJob ({name}, written "
            f"by uid {owner or 'unknown'}; this job is uid {job_uid}): choose another "
            "output.uri, or set output.overwrite: true to delete them and start clean")
    for name, _ in foreign:
        dest.remove(FOLDER, name)
    log.warning("checkpoint: output.overwrite: deleted %d checkpoints of another job (%s)",
                len(foreign), ", ".join(name for name, _ in foreign))
    return [name for name, _ in foreign]


def latest(dest: Destination) -> Checkpoint | None:
    names = completed_checkpoints(dest)
    if not names:
        return None
    folder = dest.fetch_dir(FOLDER, names[-1])
    return Checkpoint(names[-1], folder, json.loads((folder / STATE_FILE).read_text()))


def load_weights(checkpoint: Checkpoint, model) -> None:
    weights = load_file(str(checkpoint.folder / "weights.safetensors"))
    parameters = dict(model.named_parameters())
    missing = [name for name in weights if name not in parameters]
    if missing:
        raise RuntimeError(f"checkpoint {checkpoint.name} does not fit the model: {missing[:3]}")
    with torch.no_grad():
        for name, tensor in weights.items():
            parameters[name].copy_(tensor.to(parameters[name].device))


def load_training_state(checkpoint: Checkpoint, optimizer, scheduler, rank: int = 0,
                        sharded: bool = False) -> None:
    if not sharded:  # sharded: the optimizer state came with parallel.load_sharded
        optimizer.load_state_dict(torch.load(checkpoint.folder / "optimizer.pt", weights_only=True))
    scheduler.load_state_dict(torch.load(checkpoint.folder / "scheduler.pt", weights_only=True))
    # Our own file, holding numpy's state tuple: not loadable with weights_only.
    restore_rng(rank_rng_state(torch.load(checkpoint.folder / "rng.pt", weights_only=False), rank))


def rank_rng_state(saved: dict, rank: int) -> dict:
    """This rank's saved state; rank 0's when the checkpoint came from fewer ranks (a resume
    on more nodes) or from a checkpoint written before states were kept per rank."""
    ranks = saved.get("ranks")
    if ranks is None:
        return saved
    return ranks[rank] if rank < len(ranks) else ranks[0]
