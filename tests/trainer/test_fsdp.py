"""FSDP: the strategy's accelerate configuration, and sharded checkpoints that resume exactly.

accelerate builds FSDP only for accelerators (a multi-process CPU launch gets DDP whatever the
plugin says), so the trainer's FSDP path as a whole needs GPUs. What CPUs can show is tested
here: the plugin the trainer builds, the refusal on CPU, and the sharded checkpoint files with
torch's own FSDP2 (`fully_shard`) over two gloo ranks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from kubetune_trainer import parallel
from kubetune_trainer.errors import InvalidConfig

HERE = Path(__file__).resolve().parent


def test_fsdp_plugin_is_fsdp2_with_sharded_state_and_block_units():
    plugin = parallel.fsdp_plugin()
    assert plugin.fsdp_version == 2
    assert plugin.state_dict_type.name == "SHARDED_STATE_DICT"
    assert plugin.reshard_after_forward is True
    assert plugin.auto_wrap_policy is not None  # transformer blocks, from _no_split_modules


def test_cpu_offload_reaches_accelerates_plugin_as_fsdp2s_offload_policy():
    """resources.cpuOffload: accelerate turns the flag into FSDP2's CPUOffloadPolicy (the
    shards and the optimizer step on the CPU); off, the no-op OffloadPolicy. That the policy
    runs, and the memory it saves, only a GPU run shows (fsdp needs GPUs in accelerate)."""
    from torch.distributed.fsdp import CPUOffloadPolicy

    assert isinstance(parallel.fsdp_plugin(cpu_offload=True).cpu_offload, CPUOffloadPolicy)
    assert not isinstance(parallel.fsdp_plugin().cpu_offload, CPUOffloadPolicy)
    with pytest.raises(InvalidConfig, match=r"resources\.cpuOffload needs resources\.strategy"):
        parallel.make_accelerator("ddp", cuda=False, mixed_precision="no", cpu_offload=True)


def test_fsdp_on_cpu_is_refused_naming_the_field():
    with pytest.raises(InvalidConfig, match=r"resources\.strategy fsdp needs GPUs"):
        parallel.make_accelerator("fsdp", cuda=False, mixed_precision="no")


def test_ddp_on_cpu_is_accelerates_cpu_accelerator():
    accelerator = parallel.make_accelerator("ddp", cuda=False, mixed_precision="no")
    assert accelerator.device.type == "cpu"
    assert accelerator.distributed_type.name == "NO"  # one process here; gloo under a launcher


def torchrun(mode: str, folder: Path) -> list[dict]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    out = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
         "--standalone", str(HERE / "fsdp_ranks.py"), mode, str(folder)],
        capture_output=True, text=True, timeout=240, env=env, check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return [json.loads((folder / f"{mode}-{rank}.json").read_text()) for rank in (0, 1)]


def test_sharded_checkpoint_resumes_exactly_on_two_gloo_ranks(tmp_path):
    """Each rank holds half of every parameter and writes its half; a fresh model (other
    initial weights) that loads the checkpoint takes the very steps the original took."""
    continued = torchrun("continue", tmp_path)
    assert sorted(p.name for p in (tmp_path / parallel.SHARDED_FOLDER).iterdir())[:1] == [
        ".metadata"]
    resumed = torchrun("resume", tmp_path)
    assert [r["rank"] for r in continued] == [0, 1]
    for before, after in zip(continued, resumed, strict=True):
        assert before["dtensor"] == "DTensor" and before["local"] * 2 == 16 * 32
        assert after["losses"] == before["losses"]


def test_the_trainer_refuses_fsdp_with_merge_adapter(tmp_path):
    from kubetune_trainer.recipe import FinetuneRecipe

    from tests.trainer.helpers import load, make_config

    config = load(make_config(tmp_path, "file:///data.jsonl", tmp_path / "out",
                              resources={"gpus": 1, "nodes": 1, "strategy": "fsdp"},
                              output={"mergeAdapter": True}))
    with pytest.raises(InvalidConfig, match=r"output\.mergeAdapter is not supported"):
        FinetuneRecipe(config, serve_progress=False)._check_config()


def test_a_cpu_run_told_fsdp_exits_2_naming_the_field(tmp_path, capsys):
    """The operator never renders this (the API refuses fsdp without GPUs); a hand-written
    config gets an input error, not a silent DDP run."""
    from kubetune_trainer import cli

    from tests.trainer.helpers import make_config

    config = make_config(tmp_path, "file:///data.jsonl", tmp_path / "out",
                         resources={"gpus": 1, "nodes": 1, "strategy": "fsdp"},
                         output={"mergeAdapter": False})
    (tmp_path / "c.json").write_text(json.dumps(config))
    assert cli.main(["--config", str(tmp_path / "c.json")]) == 2
    assert "resources.strategy fsdp needs GPUs" in capsys.readouterr().err
