"""The container command the operator renders, and the trainer image's own command."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from kubetune.launch import trainer_command

ROOT = Path(__file__).resolve().parents[2]
CONFIG = "/etc/kubetune/config.json"


def test_single_gpu_command_is_the_images_default_command():
    dockerfile = (ROOT / "trainer-image" / "Dockerfile").read_text()
    cmd = json.loads(re.search(r"^CMD (\[.*\])$", dockerfile, re.M).group(1))
    assert cmd == trainer_command(gpus=1, nodes=1, config_path=CONFIG, rendezvous_host=None)
    assert re.search(r"^USER 1000$", dockerfile, re.M)
    assert '".[trainer,gpu]"' in dockerfile


@pytest.mark.parametrize("gpus", [0, 1])
def test_one_process_runs_the_trainer_without_a_launcher(gpus):
    # The trainer itself gets SIGTERM and sets the exit code Kubernetes sees.
    cmd = trainer_command(gpus=gpus, nodes=1, config_path=CONFIG, rendezvous_host=None)
    assert cmd == ["python", "-m", "kubetune_trainer", "--config", CONFIG]


def test_multi_gpu_single_node_runs_accelerate_under_the_supervisor():
    cmd = trainer_command(gpus=4, nodes=1, config_path=CONFIG, rendezvous_host=None)
    assert cmd[:5] == ["python", "-m", "kubetune_trainer.supervise", "--", "accelerate"]
    assert "--multi_gpu" in cmd and cmd[cmd.index("--num_processes") + 1] == "4"
    assert "--machine_rank" not in cmd
    assert cmd[-4:] == ["-m", "kubetune_trainer", "--config", CONFIG]


def test_multi_node_uses_the_completion_index_and_the_rendezvous_host():
    cmd = trainer_command(gpus=8, nodes=2, config_path=CONFIG,
                          rendezvous_host="job-train-0.job-train", port=29400)
    assert cmd[cmd.index("--num_machines") + 1] == "2"
    assert cmd[cmd.index("--num_processes") + 1] == "16"
    assert cmd[cmd.index("--machine_rank") + 1] == "$(JOB_COMPLETION_INDEX)"
    assert cmd[cmd.index("--main_process_ip") + 1] == "job-train-0.job-train"
    assert cmd[cmd.index("--main_process_port") + 1] == "29400"


def test_cpu_multi_node_is_multi_process_not_cpu_flag():
    # accelerate's --cpu with several processes silently runs one: never render it then.
    cmd = trainer_command(gpus=0, nodes=2, config_path=CONFIG, rendezvous_host="h")
    assert "--cpu" not in cmd and "--multi_gpu" in cmd


def test_multi_node_without_rendezvous_host_is_refused():
    with pytest.raises(ValueError, match="rendezvous"):
        trainer_command(gpus=1, nodes=2, config_path=CONFIG, rendezvous_host=None)


def test_launch_module_is_pure_stdlib():
    source = (ROOT / "operator" / "kubetune" / "launch.py").read_text()
    imports = re.findall(r"^(?:from|import) (\w+)", source, re.M)
    assert set(imports) <= {"__future__"}
