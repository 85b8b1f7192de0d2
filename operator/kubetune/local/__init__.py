"""The local cluster: kubetune on one machine, without Kubernetes.

`LocalCluster` runs the API emulator (kubetune.emulator), the operator and the local
executor in one process. The executor (`LocalExecutor`, `ExecutorThread`) plays kubelet
and the Job controller against the API over HTTP: Jobs become Pods, and Pods run as local
processes of the current Python environment (images are not pulled), with volumes as
folders under a work dir and loopback addresses as pod IPs. See docs in `executor.py`,
`kubelet.py` and `job_controller.py` for what is emulated.

Entry points: `kubetune local up` (`cli.add_arguments` / `cli.run`), or
`python -m kubetune.local up`.
"""

from kubetune.local.cluster import LocalCluster, find_crds_dir
from kubetune.local.executor import ExecutorThread, LocalExecutor
from kubetune.local.hf_cache import seed_hf_cache

__all__ = ["ExecutorThread", "LocalCluster", "LocalExecutor", "find_crds_dir", "seed_hf_cache"]
