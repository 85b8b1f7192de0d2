"""The trainer container's command: `accelerate launch ... -m kubetune_trainer --config PATH`.

Pure stdlib: the operator imports this to render Jobs, and the trainer image's Dockerfile
uses the same command (a test keeps them equal).

- One process per GPU; a CPU node (gpus: 0) runs one process.
- Several processes use `--multi_gpu` even on CPU: accelerate's `--cpu` with several
  processes silently starts only one. The trainer creates `Accelerator(cpu=True)` when no GPU
  is visible, which turns the launch into a gloo process group.
- Several nodes: an Indexed Job; each pod's machine rank is its completion index, which
  Kubernetes substitutes for `$(JOB_COMPLETION_INDEX)` from the container env, and all pods
  meet at the index-0 pod (`rendezvous_host`, its DNS name behind the headless Service).
"""

from __future__ import annotations

DEFAULT_PORT = 29500
MACHINE_RANK = "$(JOB_COMPLETION_INDEX)"


def trainer_command(
    *,
    gpus: int,
    nodes: int,
    config_path: str,
    rendezvous_host: str | None,
    port: int = DEFAULT_PORT,
    module: str = "kubetune_trainer",
) -> list[str]:
    """The container command for `nodes` pods with `gpus` GPUs each (0: CPU)."""
    if gpus < 0 or nodes < 1:
        raise ValueError(f"need gpus >= 0 and nodes >= 1, got gpus={gpus} nodes={nodes}")
    processes_per_node = max(gpus, 1)
    total = processes_per_node * nodes
    command = ["accelerate", "launch", "--num_machines", str(nodes),
               "--num_processes", str(total)]
    if total > 1:
        command.append("--multi_gpu")
    elif gpus == 0:
        command.append("--cpu")
    if nodes > 1:
        if not rendezvous_host:
            raise ValueError("a multi-node job needs the rendezvous host (index-0 pod)")
        command += ["--machine_rank", MACHINE_RANK, "--main_process_ip", rendezvous_host,
                    "--main_process_port", str(port)]
    # The trainer picks its precision from the config; "no" here only quiets the launcher.
    command += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    return [*command, "-m", module, "--config", config_path]
