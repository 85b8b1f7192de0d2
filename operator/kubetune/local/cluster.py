"""`LocalCluster`: the API emulator, kubetune's CRDs, the operator and the local executor in
one process — what `kubetune local up`, the quickstart and the end-to-end tests run.

    with LocalCluster(".kubetune/work", kubeconfig=".kubetune/kubeconfig",
                      pvcs={"kubetune-examples/quickstart": "examples/quickstart"}) as cluster:
        ...  # kubectl --kubeconfig cluster.kubeconfig apply -f examples/...

Start order: emulator (with CRDs) -> kubeconfig -> namespaces and claims -> executor ->
operator. Stop order: executor (its pods' processes stopped) -> operator -> emulator.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from .hf_cache import seed_hf_cache
from .volumes import WorkDir

CRD_MARKER = "finetunejobs.kubetune.io.yaml"
DEFAULT_KUBECONFIG = pathlib.Path(".kubetune/kubeconfig")
DEFAULT_WORKDIR = pathlib.Path(".kubetune/work")
_UNSET = object()


def find_crds_dir(start: str | pathlib.Path | None = None) -> pathlib.Path:
    """The repository's `crds/` folder: looked for above this package, then above `start`
    (the current directory by default). The CRDs live at the repository root, not in the
    package, so an installed copy needs `--crds DIR`."""
    places = [pathlib.Path(__file__).resolve(), pathlib.Path(start or pathlib.Path.cwd()).resolve()]
    for place in places:
        for folder in [place, *place.parents]:
            if (folder / "crds" / CRD_MARKER).is_file():
                return folder / "crds"
    raise FileNotFoundError(
        f"no crds/ folder with {CRD_MARKER} found above {places[0].parent} or {places[1]}; "
        "pass the folder explicitly (kubetune local up --crds DIR)")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class LocalCluster:
    """A whole kubetune installation on this machine, started and stopped as one.

    - `pvcs`: "NAMESPACE/CLAIM" -> a local folder to copy into the claim (or None for an
      empty claim); each becomes a PersistentVolumeClaim object and is provisioned at once.
    - `namespaces`: created up front (claims' namespaces are created anyway).
    - `extra_pod_env`: added to every pod's containers, winning over the pod spec's variable
      of the same name (e.g. the operator's HF_HOME, which points into an emptyDir).
    - `faults`: a fault SPEC for the API server (kubetune.emulator.faults), in force once
      the namespaces and claims exist; `agents=kubetune+kopf` aims it at the operator.
    - `hf_home`: when given, an offline Hugging Face cache with all-MiniLM-L6-v2 is seeded
      there (needs the `examples` extra) and pods get HF_HOME=<it> and HF_HUB_OFFLINE=1,
      unless `extra_pod_env` says otherwise.
    - `rbac`: the operator runs as the Helm chart's ServiceAccount (chart from `chart_dir`,
      default the repository's `helm/kubetune`) and the API server enforces RBAC and
      OwnerReferencesPermissionEnforcement on it; `kubeconfig` stays the cluster admin's.
    """

    def __init__(self, workdir: str | pathlib.Path = DEFAULT_WORKDIR, *, port: int = 0,
                 kubeconfig: str | pathlib.Path = DEFAULT_KUBECONFIG,
                 crds_dir: str | pathlib.Path | None = None,
                 extra_pod_env: Mapping[str, str] | None = None,
                 pvcs: Mapping[str, str | pathlib.Path | None] | None = None,
                 namespaces: tuple[str, ...] | list[str] = (),
                 hf_home: str | pathlib.Path | None = None,
                 operator: bool = True,
                 metrics_port: int | None = None,
                 operator_settings: Mapping[str, Any] | None = None,
                 shutdown_grace_seconds: float = 5.0,
                 faults: str | None = None,
                 rbac: bool = False,
                 chart_dir: str | pathlib.Path | None = None) -> None:
        self.workdir = pathlib.Path(workdir).resolve()
        self.port = port
        self.kubeconfig = pathlib.Path(kubeconfig).resolve()
        self.crds_dir = pathlib.Path(crds_dir) if crds_dir else find_crds_dir()
        self.pvcs = dict(pvcs or {})
        self.namespaces = list(namespaces)
        self.hf_home = pathlib.Path(hf_home).resolve() if hf_home else None
        self.extra_pod_env: dict[str, str] = {}
        if self.hf_home is not None:
            self.extra_pod_env.update(HF_HOME=str(self.hf_home), HF_HUB_OFFLINE="1")
        self.extra_pod_env.update(extra_pod_env or {})
        self.run_operator = operator
        self.rbac = rbac
        self.chart_dir = pathlib.Path(chart_dir) if chart_dir else None
        # In RBAC mode the operator's own kubeconfig (the chart's ServiceAccount's token).
        self.operator_kubeconfig = self.kubeconfig
        self.metrics_port = metrics_port
        self.operator_settings = dict(operator_settings or {})
        self.shutdown_grace_seconds = shutdown_grace_seconds
        self.faults = faults
        self.emulator: Any = None
        self.executor: Any = None
        self.operator: Any = None
        self._kube: Any = None
        self._previous_kubeconfig_env: Any = _UNSET

    @property
    def url(self) -> str:
        return self.emulator.url

    def start(self) -> LocalCluster:
        # Imported here: `kubetune local --help` must not need kmock or kopf.
        from kubetune.emulator import ApiServerEmulator, EmulatorThread
        from kubetune.emulator.faults import FaultSpec

        from .executor import ExecutorThread

        if self.hf_home is not None:
            seed_hf_cache(self.hf_home)
        try:
            self.emulator = EmulatorThread(ApiServerEmulator(rbac=self.rbac), port=self.port,
                                           crds=self.crds_dir).start()
            attach_pod_logs(self.emulator, self.workdir)
            self.emulator.write_kubeconfig(self.kubeconfig)
            self._create_namespaces_and_claims()
            if self.rbac:
                self._install_operator_rbac()
            if self.faults:
                spec = FaultSpec.parse(self.faults)
                self.emulator.call(lambda emulator: emulator.set_faults(spec))
            self.executor = ExecutorThread(
                self.kubeconfig, self.workdir, extra_pod_env=self.extra_pod_env,
                shutdown_grace_seconds=self.shutdown_grace_seconds).start()
            if self.run_operator:
                self._start_operator()
        except BaseException:
            self.stop()
            raise
        return self

    def _start_operator(self) -> None:

        from kubetune.operator.kube import Kube
        from kubetune.operator.runner import OperatorThread
        from kubetune.operator.settings import Settings

        settings = Settings(metrics_port=self.metrics_port if self.metrics_port is not None
                            else free_port(), health_port=0, progress_interval_seconds=2)
        settings = replace(settings, **self.operator_settings)
        # kopf's login handler (kubetune.operator.handlers.login) reads KUBECONFIG and offers
        # no other way in: point it at our file for as long as the cluster runs.
        if self._previous_kubeconfig_env is _UNSET:
            self._previous_kubeconfig_env = os.environ.get("KUBECONFIG")
        os.environ["KUBECONFIG"] = str(self.operator_kubeconfig)
        self._kube = Kube.connect(str(self.operator_kubeconfig))
        memo = {"kube": self._kube, "fit_checker": self._fit_checker(settings)}
        self.operator = OperatorThread(settings, memo=memo).start()

    def _fit_checker(self, settings: Any) -> Any:
        """The fit check reads config.json where the pods read models: the seeded offline
        Hugging Face cache and the claims' folders, not the user's own cache."""
        from kubetune.operator.fit import make_fit_checker
        from kubetune.planner import ConfigSource

        workdir = WorkDir(self.workdir)
        claims = {claim: workdir.pvc(namespace, claim)
                  for namespace, claim in map(_claim_key, self.pvcs)}
        source = ConfigSource(pvc_roots=claims, timeout_seconds=settings.config_fetch_timeout_seconds)
        if self.hf_home is not None:
            source = ConfigSource(hf_cache=self.hf_home / "hub", offline=True, pvc_roots=claims)
        return make_fit_checker(settings, source)

    def _install_operator_rbac(self) -> None:
        """The chart's ServiceAccount, roles and bindings, and a kubeconfig for the operator
        with that ServiceAccount's token: from now on it gets what the chart grants."""
        from .chart import find_chart_dir, install_operator_rbac, operator_rbac, render_chart

        rbac = operator_rbac(render_chart(self.chart_dir or find_chart_dir()), with_policies=True)
        self.operator_kubeconfig = install_operator_rbac(
            self.emulator, self.kubeconfig, self.workdir / "operator.kubeconfig", rbac)

    def restart_operator(self) -> None:
        """Stop the operator and start a new one, as a crashed and rescheduled pod would be."""
        if self.operator is not None:
            self.operator.stop()
            self.operator = None
        self._start_operator()

    def _create_namespaces_and_claims(self) -> None:
        import kubernetes

        workdir = WorkDir(self.workdir)
        client = kubernetes.config.new_client_from_config(config_file=str(self.kubeconfig))
        try:
            core = kubernetes.client.CoreV1Api(client)
            wanted = [*self.namespaces, *(key.split("/", 1)[0] for key in self.pvcs)]
            existing = {ns.metadata.name for ns in core.list_namespace().items}
            for namespace in dict.fromkeys(wanted):
                if namespace not in existing:
                    core.create_namespace({"metadata": {"name": namespace}})
            for key, source in self.pvcs.items():
                namespace, claim = _claim_key(key)
                folder = workdir.pvc(namespace, claim)
                folder.mkdir(parents=True, exist_ok=True)
                if source is not None:
                    shutil.copytree(source, folder, dirs_exist_ok=True)
                core.create_namespaced_persistent_volume_claim(namespace, {
                    "metadata": {"name": claim, "labels": {"app.kubernetes.io/managed-by": "kubetune-local"}},
                    "spec": {"accessModes": ["ReadWriteOnce"],
                             "resources": {"requests": {"storage": "10Gi"}}},
                })
        finally:
            client.close()

    def stop(self) -> None:
        """Executor first (so no new pod starts), then the operator, then the API."""
        if self.executor is not None:
            self.executor.stop()
            self.executor = None
        if self.operator is not None:
            self.operator.stop()
            self.operator = None
        self._kube = None
        if self._previous_kubeconfig_env is not _UNSET:
            if self._previous_kubeconfig_env is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = self._previous_kubeconfig_env
            self._previous_kubeconfig_env = _UNSET
        if self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def attach_pod_logs(emulator: Any, workdir: str | pathlib.Path) -> None:
    """Let the API server answer `kubectl logs` from the executor's log files (the part of
    the kubelet that serves `/containerLogs` to kube-apiserver)."""
    files = WorkDir(pathlib.Path(workdir).resolve()).container_log
    emulator.call(lambda server: setattr(server, "pod_log_files", files))


def _claim_key(key: str) -> tuple[str, str]:
    namespace, _, claim = key.partition("/")
    if not namespace or not claim:
        raise ValueError(f"a claim is named NAMESPACE/CLAIM, got {key!r}")
    return namespace, claim
