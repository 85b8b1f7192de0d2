"""A Kubernetes API server emulator for the operator's tests and the local cluster.

Built on kmock's `KubernetesEmulator`; see `server.py` for what it adds. Start it with
`EmulatorServer` (async, in the caller's loop) or `EmulatorThread` (own loop and thread),
then `write_kubeconfig()` for kubectl, kopf and the `kubernetes` client.

Admission follows kube-apiserver v1.32 (admission.py): custom resources are pruned, defaulted
and validated against their CRD's structural schema and `x-kubernetes-validations` CEL rules
(schema_coercion.py, schema_validation.py, cel_rules.py); built-ins against the official
OpenAPI schemas from kubernetes-validate (builtin_schemas.py) and part of the hand-written
rules (builtin_rules.py, object_meta.py); `fieldValidation` Strict/Warn/Ignore
(field_validation.py); 404 for writes into missing namespaces; 415 for strategic merge
patches of custom resources; errors worded as apimachinery words them (field_errors.py);
ValidatingAdmissionPolicies judged as the requesting user (admission_policies.py).

Beyond admission: garbage collection runs asynchronously by owner uid, as
kube-controller-manager's (garbage_collector.py); `rbac=True` authenticates bearer tokens and
authorizes by RBAC (authorization.py), enforces OwnerReferencesPermissionEnforcement
(owner_references_admission.py) and answers SubjectAccessReviews (sar.py); faults.py
injects kube-apiserver's failures on demand.

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
