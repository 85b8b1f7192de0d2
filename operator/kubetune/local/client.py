"""The local executor's only way to the cluster: plain HTTP to the API server, with aiohttp.

The executor plays kubelet and the Job controller, so it must see exactly what any other
controller sees; it never reaches into the emulator's memory. Objects are plain dicts, as
they come over the wire.

`Informer` is the list-then-watch loop every controller runs: it keeps a cache of one
resource and turns the stream into ADDED/MODIFIED/DELETED callbacks, re-listing (and
reporting what vanished in between) when the server says the watch's history is gone.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import pathlib
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aiohttp
import yaml

log = logging.getLogger(__name__)

Object = dict[str, Any]
MERGE_PATCH = "application/merge-patch+json"
_RETRY_SECONDS = 0.5
_WATCH_TIMEOUT_SECONDS = 300


class ApiError(Exception):
    """A non-2xx answer; `status` is the HTTP code, `body` the Status object (if any)."""

    def __init__(self, status: int, body: Any) -> None:
        message = body.get("message") if isinstance(body, dict) else str(body)
        super().__init__(f"{status}: {message}")
        self.status, self.body = status, body


class ApiClient:
    """A few verbs over the Kubernetes REST API (paths such as `/api/v1/namespaces/x/pods`)."""

    def __init__(self, server: str, token: str | None = None, verify_tls: bool = True) -> None:
        self.server = server.rstrip("/")
        self._headers = {"Authorization": f"Bearer {token}"} if token else {}
        self._verify_tls = verify_tls
        self._session: aiohttp.ClientSession | None = None

    @classmethod
    def from_kubeconfig(cls, path: str | pathlib.Path) -> ApiClient:
        """Server and bearer token of the current context (what the emulator writes)."""
        config = yaml.safe_load(pathlib.Path(path).read_text())
        context_name = config.get("current-context")
        context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
        user = next((u["user"] for u in config.get("users", []) if u["name"] == context.get("user")), {})
        return cls(cluster["server"], user.get("token"),
                   verify_tls=not cluster.get("insecure-skip-tls-verify", False))

    async def __aenter__(self) -> ApiClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            # No total timeout: watches stay open for minutes; they carry their own timeout.
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=None, connect=10))
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(self, method: str, path: str, body: Any = None, *,
                      content_type: str = "application/json",
                      params: dict[str, str] | None = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        headers = {"Content-Type": content_type} if data is not None else {}
        async with self._client().request(method, self.server + path, data=data, headers=headers,
                                          params=params, ssl=self._verify_tls) as response:
            text = await response.text()
            payload = json.loads(text) if text else None
            if response.status >= 400:
                raise ApiError(response.status, payload)
            return payload

    async def get(self, path: str) -> Object:
        return await self.request("GET", path)

    async def get_or_none(self, path: str) -> Object | None:
        try:
            return await self.get(path)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def list(self, path: str, label_selector: str | None = None) -> Object:
        params = {"labelSelector": label_selector} if label_selector else None
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: Object) -> Object:
        return await self.request("POST", path, body)

    async def merge_patch(self, path: str, patch: Object) -> Object | None:
        """Merge-patch an object; None when it is gone (a status write racing a deletion)."""
        try:
            return await self.request("PATCH", path, patch, content_type=MERGE_PATCH)
        except ApiError as error:
            if error.status == 404:
                return None
            raise

    async def delete(self, path: str) -> None:
        with contextlib.suppress(ApiError):  # already gone is fine
            await self.request("DELETE", path, {"propagationPolicy": "Background"})

    async def watch(self, path: str, resource_version: str) -> AsyncIterator[tuple[str, Object]]:
        """(type, object) events after `resource_version`, until the server ends the stream."""
        params = {"watch": "true", "resourceVersion": resource_version,
                  "timeoutSeconds": str(_WATCH_TIMEOUT_SECONDS)}
        async with self._client().get(self.server + path, params=params, ssl=self._verify_tls) as response:
            if response.status >= 400:
                raise ApiError(response.status, await response.text())
            async for line in response.content:
                if line.strip():
                    event = json.loads(line)
                    yield event["type"], event["object"]


EventHandler = Callable[[str, Object], Awaitable[None]]


class WatchExpired(Exception):
    """The server no longer has the history a watch asked for (410 Gone): list again."""


class Informer:
    """List-then-watch one resource path, keep a cache, call `handler(type, object)`."""

    def __init__(self, api: ApiClient, path: str, handler: EventHandler) -> None:
        self.api, self.path, self.handler = api, path, handler
        self.cache: dict[str, Object] = {}  # uid -> object
        self.synced = asyncio.Event()

    async def run(self) -> None:
        while True:
            try:
                version = await self._relist()
                self.synced.set()
                while True:
                    version = await self._follow(version)
            except asyncio.CancelledError:
                raise
            except WatchExpired:
                continue
            except Exception as error:  # the server restarting, a dropped connection
                log.debug("watch of %s broke (%s); listing again", self.path, error)
                await asyncio.sleep(_RETRY_SECONDS)

    async def _relist(self) -> str:
        listing = await self.api.list(self.path)
        current = {item["metadata"]["uid"]: item for item in listing["items"]}
        for uid, gone in list(self.cache.items()):
            if uid not in current:  # deleted while we were not watching
                await self._deliver("DELETED", gone)
        for item in current.values():
            old = self.cache.get(item["metadata"]["uid"])
            if old is None or old["metadata"].get("resourceVersion") != item["metadata"].get(
                    "resourceVersion"):
                await self._deliver("MODIFIED" if old else "ADDED", item)
        return listing["metadata"]["resourceVersion"]

    async def _follow(self, version: str) -> str:
        async for event_type, obj in self.api.watch(self.path, version):
            if event_type == "ERROR":
                raise WatchExpired()
            if event_type == "BOOKMARK":
                version = obj["metadata"]["resourceVersion"]
                continue
            version = obj["metadata"].get("resourceVersion") or version
            await self._deliver(event_type, obj)
        return version

    async def _deliver(self, event_type: str, obj: Object) -> None:
        uid = obj["metadata"]["uid"]
        if event_type == "DELETED":
            self.cache.pop(uid, None)
        else:
            self.cache[uid] = obj
        try:
            await self.handler(event_type, obj)
        except Exception:  # one bad object must not stop the watch for all others
            log.exception("handling %s of %s failed", event_type, obj["metadata"].get("name"))
