"""Volumes as folders under the work dir, and where each in-container path lands.

Layout (`WorkDir`)::

    <workdir>/pods/<ns>/<pod>/volumes/<volume>/   configMap, secret, emptyDir contents
    <workdir>/pods/<ns>/<pod>/log                 the container's stdout and stderr
    <workdir>/pods/<ns>/<pod>/termination-log     its termination-message file
    <workdir>/pvcs/<ns>/<claim>/                  a PersistentVolumeClaim, made on first use

`hostPath` volumes are the host folders themselves. `/dev/shm` mounts stay `/dev/shm`
(shared memory exists on the host and NCCL or dataloaders expect it there).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Any

from .client import ApiClient, Object
from .environment import ContainerConfigError, ObjectReader
from .expansion import PathMap

UNTRANSLATED_MOUNTS = ("/dev/shm",)
DEFAULT_TERMINATION_PATH = "/dev/termination-log"


@dataclass(frozen=True)
class WorkDir:
    root: pathlib.Path

    def pod(self, namespace: str, name: str) -> pathlib.Path:
        return self.root / "pods" / namespace / name

    def pvc(self, namespace: str, claim: str) -> pathlib.Path:
        return self.root / "pvcs" / namespace / claim

    def log(self, namespace: str, pod: str, container: str, only: bool) -> pathlib.Path:
        folder = self.pod(namespace, pod)
        return folder / "log" if only else folder / "logs" / container

    def container_log(self, pod: Object, container: str) -> pathlib.Path:
        """The log of one container of `pod` (what `kubectl logs` reads through the API)."""
        spec = pod.get("spec") or {}
        only = len([*spec.get("initContainers", []), *spec.get("containers", [])]) == 1
        return self.log(pod["metadata"]["namespace"], pod["metadata"]["name"], container, only)

    def termination_file(self, namespace: str, pod: str, container: str, only: bool) -> pathlib.Path:
        folder = self.pod(namespace, pod)
        return folder / "termination-log" if only else folder / f"termination-log-{container}"


class VolumeNotReady(Exception):
    """A volume cannot be set up yet (the pod stays ContainerCreating, the kubelet retries)."""


async def missing_claim(api: ApiClient, pod: Object) -> str | None:
    """The scheduler's complaint about the pod's claims, or None when all exist."""
    namespace = pod["metadata"]["namespace"]
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        claim = (volume.get("persistentVolumeClaim") or {}).get("claimName")
        if claim and await api.get_or_none(
                f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}") is None:
            return f'persistentvolumeclaim "{claim}" not found'
    return None


async def prepare_volumes(api: ApiClient, reader: ObjectReader, pod: Object,
                          workdir: WorkDir) -> dict[str, pathlib.Path]:
    """Lay out every volume of the pod; volume name -> the local folder backing it."""
    meta = pod["metadata"]
    namespace, pod_name = meta["namespace"], meta["name"]
    folder = workdir.pod(namespace, pod_name) / "volumes"
    backing: dict[str, pathlib.Path] = {}
    for volume in (pod.get("spec") or {}).get("volumes") or []:
        name = volume["name"]
        target = folder / name
        if "emptyDir" in volume:
            target.mkdir(parents=True, exist_ok=True)
        elif "configMap" in volume or "secret" in volume:
            kind, source = (("ConfigMap", volume["configMap"]) if "configMap" in volume
                            else ("Secret", volume["secret"]))
            ref = source.get("name") or source.get("secretName")
            try:
                data = await reader.data(kind, ref, source.get("optional", False))
            except ContainerConfigError as error:
                raise VolumeNotReady(f"MountVolume.SetUp failed for volume \"{name}\": {error}") from None
            _write_files(target, data or {}, source.get("items"))
        elif "persistentVolumeClaim" in volume:
            claim = volume["persistentVolumeClaim"]["claimName"]
            target = workdir.pvc(namespace, claim)
            target.mkdir(parents=True, exist_ok=True)
            await _mark_bound(api, namespace, claim)
        elif "hostPath" in volume:
            target = pathlib.Path(volume["hostPath"]["path"])
        else:
            kinds = sorted(k for k in volume if k != "name")
            raise VolumeNotReady(
                f"volume \"{name}\" ({', '.join(kinds)}): the local executor supports emptyDir, "
                "configMap, secret, persistentVolumeClaim and hostPath volumes")
        backing[name] = target
    return backing


def container_paths(container: dict[str, Any], backing: dict[str, pathlib.Path],
                    termination_file: pathlib.Path) -> PathMap:
    """In-container path -> local path for the container's mounts and termination file."""
    paths = PathMap()
    for mount in container.get("volumeMounts") or []:
        if mount["mountPath"] in UNTRANSLATED_MOUNTS or mount["name"] not in backing:
            continue
        local = backing[mount["name"]]
        if mount.get("subPath"):
            local = local / mount["subPath"]
            local.mkdir(parents=True, exist_ok=True)
        paths.add(mount["mountPath"], str(local))
    paths.add(container.get("terminationMessagePath") or DEFAULT_TERMINATION_PATH,
              str(termination_file))
    return paths


def _write_files(target: pathlib.Path, data: dict[str, str], items: list[dict] | None) -> None:
    target.mkdir(parents=True, exist_ok=True)
    chosen = [(item["key"], item.get("path") or item["key"]) for item in items] if items else [
        (key, key) for key in data]
    for key, relative in chosen:
        if key in data:
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(data[key])


async def _mark_bound(api: ApiClient, namespace: str, claim: str) -> None:
    """Provisioned on first use: the claim reports Bound, as with a dynamic provisioner."""
    path = f"/api/v1/namespaces/{namespace}/persistentvolumeclaims/{claim}"
    current = await api.get_or_none(path)
    if current is None or (current.get("status") or {}).get("phase") == "Bound":
        return
    spec = current.get("spec") or {}
    storage = ((spec.get("resources") or {}).get("requests") or {}).get("storage")
    status: dict[str, Any] = {"phase": "Bound", "accessModes": spec.get("accessModes") or ["ReadWriteOnce"]}
    if storage:
        status["capacity"] = {"storage": storage}
    await api.merge_patch(path + "/status", {"status": status})

