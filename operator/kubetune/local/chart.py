"""The Helm chart's RBAC (and admission policies) for the local cluster's RBAC mode
(`kubetune local up --rbac`).

The operator then runs as the chart's ServiceAccount and the API emulator authorizes its
requests against the ClusterRole/Role and bindings the chart renders, so a permission the
chart lacks is a 403 here as on a cluster. The chart is rendered with Helm's own engine
(helm-python-sdk, offline), from `helm/kubetune` of the repository (or `--chart DIR`).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

import yaml

CHART_MARKER = pathlib.Path("helm/kubetune/Chart.yaml")
RELEASE = "kubetune"
RELEASE_NAMESPACE = "kubetune-system"
RBAC_KINDS = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding")
# No confused deputy: a job may name only what its requester may get (README, "Security
# model"); with them, `kubectl --as=USER` shows USER's verdict.
POLICY_KINDS = ("ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding")


def find_chart_dir(start: str | pathlib.Path | None = None) -> pathlib.Path:
    """`helm/kubetune`, looked for above this package, then above `start` (the current
    directory by default), as `find_crds_dir` looks for `crds/`."""
    places = [pathlib.Path(__file__).resolve(), pathlib.Path(start or pathlib.Path.cwd()).resolve()]
    for place in places:
        for folder in [place, *place.parents]:
            if (folder / CHART_MARKER).is_file():
                return folder / CHART_MARKER.parent
    raise FileNotFoundError(
        f"no {CHART_MARKER} found above {places[0].parent} or {places[1]}; "
        "pass the chart folder explicitly (kubetune local up --rbac --chart DIR)")


def render_chart(chart_dir: str | pathlib.Path, values: dict[str, Any] | None = None, *,
                 release: str = RELEASE, namespace: str = RELEASE_NAMESPACE) -> list[dict[str, Any]]:
    """Every manifest `helm template` would print for these values (NOTES.txt left out)."""
    try:
        import helm_python
    except ImportError as error:  # pragma: no cover - the `local` extra installs it
        raise RuntimeError("rendering the chart needs helm-python-sdk (pip install 'kubetune[local]')") \
            from error
    files = helm_python.Chart.load(pathlib.Path(chart_dir)).render(
        values or {}, name=release, namespace=namespace, is_install=True)
    return [document
            for path, text in sorted(files.items()) if not path.endswith("NOTES.txt")
            for document in yaml.safe_load_all(text) if document]


@dataclass(frozen=True)
class OperatorRbac:
    """The chart's RBAC objects and the identity its Deployment runs as."""

    namespace: str
    service_account: str
    manifests: tuple[dict[str, Any], ...]


def operator_rbac(manifests: list[dict[str, Any]], with_policies: bool = False) -> OperatorRbac:
    """Pick the RBAC objects (and with `with_policies`, the admission policies) out of a
    rendering, and the Deployment's ServiceAccount."""
    kinds = RBAC_KINDS + (POLICY_KINDS if with_policies else ())
    deployment = next(m for m in manifests if m["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    return OperatorRbac(
        namespace=deployment["metadata"].get("namespace") or RELEASE_NAMESPACE,
        service_account=pod.get("serviceAccountName") or "default",
        manifests=tuple(m for m in manifests if m["kind"] in kinds))


def install_operator_rbac(emulator: Any, admin_kubeconfig: str | pathlib.Path,
                          operator_kubeconfig: str | pathlib.Path, rbac: OperatorRbac) -> pathlib.Path:
    """Create `rbac`'s objects (and their namespace) as the admin, issue a token for its
    ServiceAccount, and write a kubeconfig with it. `emulator` is a running EmulatorThread
    with RBAC on; returns the operator's kubeconfig."""
    import kubernetes
    from kubernetes import utils as kubernetes_utils

    from kubetune.emulator.authorization import service_account_user

    client = kubernetes.config.new_client_from_config(config_file=str(admin_kubeconfig))
    try:
        core = kubernetes.client.CoreV1Api(client)
        if rbac.namespace not in {ns.metadata.name for ns in core.list_namespace().items}:
            core.create_namespace({"metadata": {"name": rbac.namespace}})
        for manifest in rbac.manifests:
            kubernetes_utils.create_from_dict(client, manifest)
    finally:
        client.close()
    user = service_account_user(rbac.namespace, rbac.service_account)
    token = emulator.call(lambda server: server.authenticator.issue_token(user))
    return emulator.write_kubeconfig(operator_kubeconfig, token=token)
