"""A Kubernetes API server emulator for the operator's tests and the local cluster.

Built on kmock's `KubernetesEmulator`; see `server.py` for what it adds. Start it with
`EmulatorServer` (async, in the caller's loop) or `EmulatorThread` (own loop and thread),
then `write_kubeconfig()` for kubectl, kopf and the `kubernetes` client.

Where it still differs from kube-apiserver is listed in the README's local-cluster section
("What still differs from a real cluster"); each module's docstring says what it leaves out.
"""

from kubetune.emulator.crds import read_crd_documents
from kubetune.emulator.kubeconfig import kubeconfig_dict, write_kubeconfig
from kubetune.emulator.resources import BUILTIN_RESOURCES, ResourceType
from kubetune.emulator.runner import EmulatorServer, EmulatorThread
from kubetune.emulator.server import ApiServerEmulator

__all__ = [
    "BUILTIN_RESOURCES",
    "ApiServerEmulator",
    "EmulatorServer",
    "EmulatorThread",
    "ResourceType",
    "kubeconfig_dict",
    "read_crd_documents",
    "write_kubeconfig",
]
