"""Run by torchrun with two gloo ranks (tests/trainer/test_fsdp.py): train a tiny model sharded
with FSDP2 (`fully_shard`), checkpoint it with the trainer's sharded checkpoint functions, and
write the losses of the steps after the checkpoint, either continuing or resumed."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch
import torch.distributed as dist
from kubetune_trainer import parallel
from torch.distributed.fsdp import fully_shard


def build(seed: int):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(16, 32), torch.nn.Tanh(), torch.nn.Linear(32, 1))
    for layer in model:
        if isinstance(layer, torch.nn.Linear):
            fully_shard(layer)  # one unit per layer, as per transformer block in the trainer
    fully_shard(model)
    return model, torch.optim.AdamW(model.parameters(), lr=0.05)


def step(model, optimizer, n: int) -> float:
    generator = torch.Generator().manual_seed(1000 * n + dist.get_rank())
    x = torch.randn(8, 16, generator=generator)
    loss = ((model(x) - x.sum(1, keepdim=True)) ** 2).mean()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad()
    return loss.item()


def main(mode: str, folder: Path) -> None:
    dist.init_process_group("gloo")
    if mode == "continue":  # 2 steps, checkpoint, 2 more
        model, optimizer = build(seed=0)
        for n in range(2):
            step(model, optimizer, n)
        parallel.save_sharded(folder, model, optimizer)
    else:  # a fresh, differently initialised model resumes from the checkpoint
        model, optimizer = build(seed=123)
        parallel.load_sharded(folder, model, optimizer)
    local = next(model.parameters()).to_local().numel()
    total = sum(p.numel() for p in model.parameters())
    losses = [step(model, optimizer, n) for n in (2, 3)]
    # One file per rank: printed lines of two processes interleave.
    (folder / f"{mode}-{dist.get_rank()}.json").write_text(json.dumps({
        "rank": dist.get_rank(), "losses": losses, "local": local, "total": total,
        "dtensor": type(next(model.parameters())).__name__}))
    dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
