"""The trainer container's command.

Pure stdlib: the operator imports this to render Jobs, and the trainer image's Dockerfile
uses the same command (a test keeps them equal).

- One process (one node, at most one GPU): `python -m kubetune_trainer --config PATH`, with
  no launcher in between. The trainer is the container's main process, so it receives the
  SIGTERM of a suspend or preemption itself (and saves a checkpoint), and its own exit code
  reaches Kubernetes: 2 (invalid input) must stay 2 for the podFailurePolicy to fail the Job
  at once, and `accelerate launch` turns every failure into 1.
- Several processes: `accelerate launch` under `kubetune_trainer.supervise`, which forwards
  SIGTERM to the launcher and gives Kubernetes the trainer's exit code back.
  `--multi_gpu` is used even on CPU: accelerate's `--cpu` with several processes silently
  starts only one. The trainer creates `Accelerator(cpu=True)` when no GPU is visible, which
  turns the launch into a gloo process group.
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
    trainer = ["-m", module, "--config", config_path]
    if total == 1:
        return ["python", *trainer]
    command = ["python", "-m", f"{module}.supervise", "--",
               "accelerate", "launch", "--num_machines", str(nodes),
               "--num_processes", str(total), "--multi_gpu"]
    if nodes > 1:
        if not rendezvous_host:
            raise ValueError("a multi-node job needs the rendezvous host (index-0 pod)")
        command += ["--machine_rank", MACHINE_RANK, "--main_process_ip", rendezvous_host,
                    "--main_process_port", str(port)]
    # The trainer picks its precision from the config; "no" here only quiets the launcher.
    command += ["--mixed_precision", "no", "--dynamo_backend", "no"]
    return [*command, *trainer]
