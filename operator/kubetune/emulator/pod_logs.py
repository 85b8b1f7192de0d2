"""`GET /api/v1/namespaces/NS/pods/NAME/log`: a container's output, as `kubectl logs` reads it.

kube-apiserver checks the request (pkg/registry/core/pod/strategy.go `LogLocation`: which
container, `container X is not valid for pod Y`) and streams what the node's kubelet
returns (pkg/kubelet/kubelet_pods.go `validateContainerLogStatus`: `... is waiting to
start: ContainerCreating`, `previous terminated container ... not found`) as text/plain.
Here the "kubelet" is a function the local executor registers (`ApiServerEmulator.
pod_log_files`): pod and container -> the file its output goes to.

Query parameters: `container`, `follow` (stream until the container has terminated and
everything written is sent), `tailLines`, `limitBytes`, `previous`. Not supported (400):
`timestamps`, `sinceSeconds` and `sinceTime`, since the executor's log files hold no
per-line times.
"""

from __future__ import annotations

import asyncio
import pathlib
from collections.abc import Callable, Mapping
from typing import Any

import aiohttp.web

from kubetune.emulator import errors

Object = dict[str, Any]
# pod, container name -> the file holding that container's stdout and stderr (or None).
LogFiles = Callable[[Object, str], pathlib.Path | None]
FOLLOW_POLL_SECONDS = 0.2
_CHUNK = 64 * 1024


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "false").lower() in ("true", "1")


def _positive_int(query: Mapping[str, str], name: str) -> int | None:
    raw = query.get(name)
    if raw is None:
        return None
    try:
        value = int(raw)
    except ValueError:
        raise errors.bad_request(f"{name}: Invalid value: {raw!r}: must be an integer") from None
    if value < 0 or (name == "limitBytes" and value == 0):
        raise errors.invalid("", "pods", "", f"{name}: Invalid value: {value}: must be greater than 0")
    return value


def choose_container(pod: Object, requested: str | None) -> str:
    """The container a log request is for (LogLocation's rules and messages)."""
    spec = pod.get("spec") or {}
    name = pod["metadata"]["name"]
    containers = [c["name"] for c in spec.get("containers") or []]
    init = [c["name"] for c in spec.get("initContainers") or []]
    if not requested:
        if len(containers) == 1:
            return containers[0]
        message = (f"a container name must be specified for pod {name}, "
                   f"choose one of: [{' '.join(containers)}]")
        if init:
            message += f" or one of the init containers: [{' '.join(init)}]"
        raise errors.bad_request(message)
    if requested not in containers + init:
        raise errors.bad_request(f"container {requested} is not valid for pod {name}")
    return requested


def _container_status(pod: Object, container: str) -> Object | None:
    status = pod.get("status") or {}
    for entry in [*(status.get("initContainerStatuses") or []), *(status.get("containerStatuses") or [])]:
        if entry.get("name") == container:
            return entry
    return None


def check_log_status(pod: Object, container: str, previous: bool) -> None:
    """The kubelet's refusals: nothing to read yet, or no previous instance."""
    name = pod["metadata"]["name"]
    status = _container_status(pod, container)
    if previous:
        if not ((status or {}).get("lastState") or {}).get("terminated"):
            raise errors.bad_request(f'previous terminated container "{container}" in pod "{name}" not found')
        return
    state = (status or {}).get("state") or {}
    if status is None or (not state.get("running") and not state.get("terminated")):
        reason = (state.get("waiting") or {}).get("reason") or "ContainerCreating"
        raise errors.bad_request(f'container "{container}" in pod "{name}" is waiting to start: {reason}')


def _terminated(pod: Object | None, container: str) -> bool:
    if pod is None:
        return True
    state = (_container_status(pod, container) or {}).get("state") or {}
    return bool(state.get("terminated"))


def _tail(data: bytes, lines: int) -> bytes:
    if lines == 0:
        return b""
    pieces = data.splitlines(keepends=True)
    return b"".join(pieces[-lines:])


async def serve_pod_log(raw_request: aiohttp.web.BaseRequest, pod: Object,
                        log_files: LogFiles | None,
                        current_pod: Callable[[], Object | None]) -> aiohttp.web.StreamResponse:
    query = raw_request.query
    for unsupported in ("timestamps", "sinceSeconds", "sinceTime"):
        if unsupported in query and query[unsupported] not in ("false", "0", ""):
            raise errors.bad_request(
                f"{unsupported} is not supported by the local cluster's logs (no per-line times)")
    container = choose_container(pod, query.get("container"))
    previous = _flag(query, "previous")
    check_log_status(pod, container, previous)
    tail_lines, limit = _positive_int(query, "tailLines"), _positive_int(query, "limitBytes")
    path = log_files(pod, container) if log_files is not None else None
    if path is None:
        raise errors.bad_request(f'no kubelet serves the logs of pod "{pod["metadata"]["name"]}"')

    response = aiohttp.web.StreamResponse(headers={"Content-Type": "text/plain"})
    await response.prepare(raw_request)
    sent = 0

    async def send(data: bytes) -> bool:
        """Write, honouring limitBytes; False once the limit is reached."""
        nonlocal sent
        if limit is not None:
            data = data[:max(0, limit - sent)]
        if data:
            await response.write(data)
            sent += len(data)
        return limit is None or sent < limit

    follow, more, offset = _flag(query, "follow"), True, 0
    if tail_lines is not None:
        try:
            existing = path.read_bytes()
        except OSError:
            existing = b""
        offset = len(existing)
        more = await send(_tail(existing, tail_lines))
    while more:
        finished = not follow or _terminated(current_pod(), container)  # before the read: no lost tail
        chunk = _read_from(path, offset)
        offset += len(chunk)
        more = await send(chunk)
        if not chunk and finished:
            break
        if not chunk:
            await asyncio.sleep(FOLLOW_POLL_SECONDS)
    await response.write_eof()
    return response


def _read_from(path: pathlib.Path, offset: int) -> bytes:
    try:
        with path.open("rb") as file:
            file.seek(offset)
            return file.read(_CHUNK)
    except OSError:
        return b""
