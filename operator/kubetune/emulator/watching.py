"""Watch streams: `?watch=true` answered with one JSON event per line, as kube-apiserver does.

Semantics kept from the real server, because kopf and the `kubernetes` client rely on them:
- without a resourceVersion (or with "0"), the stream starts with ADDED for every existing
  object, then follows changes;
- with a resourceVersion, it replays the changes after it from the history ring, or sends
  an ERROR event with a 410 Expired Status when that history is gone (clients then re-list);
- with selectors, an object that starts matching arrives as ADDED and one that stops
  matching as DELETED;
- `timeoutSeconds` ends the stream cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp.web

from kubetune.emulator import errors
from kubetune.emulator.resources import ResourceType
from kubetune.emulator.selectors import Predicate
from kubetune.emulator.store import ObjectStore, StoredEvent

Present = Callable[[ResourceType, dict[str, Any]], dict[str, Any]]


def visible_change(event: StoredEvent, matches: Predicate) -> tuple[str, dict[str, Any]] | None:
    """How a stored change looks to a watcher that only sees objects matching `matches`."""
    new_matches = matches(event.new)
    old_matches = event.old is not None and matches(event.old)
    if event.type == "DELETED":
        return ("DELETED", event.new) if (old_matches or new_matches) else None
    if new_matches:
        return ("MODIFIED" if old_matches else "ADDED", event.new)
    if old_matches:
        return ("DELETED", event.new)
    return None


class WatchStream:
    """One open watch request, from its initial events to its end."""

    def __init__(self, store: ObjectStore, rtype: ResourceType, matches: Predicate,
                 present: Present) -> None:
        self._store = store
        self._rtype = rtype
        self._matches = matches
        self._present = present

    async def serve(self, raw_request: aiohttp.web.BaseRequest, resource_version: str | None,
                    timeout_seconds: float | None) -> aiohttp.web.StreamResponse:
        if resource_version not in (None, "", "0") and not resource_version.isdigit():
            raise errors.bad_request(f"invalid resourceVersion: {resource_version!r}")
        key = self._rtype.storage_key
        # Subscribe before taking the snapshot: nothing awaits in between, so no event is lost,
        # and events already covered by the snapshot are skipped by their resourceVersion.
        queue = self._store.subscribe(key)
        try:
            response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            await response.prepare(raw_request)
            with contextlib.suppress(ConnectionError):
                await self._stream(response, queue, resource_version, timeout_seconds)
            return response
        finally:
            self._store.unsubscribe(key, queue)

    async def _stream(self, response: aiohttp.web.StreamResponse,
                      queue: asyncio.Queue[StoredEvent], resource_version: str | None,
                      timeout_seconds: float | None) -> None:
        covered_up_to = self._store.resource_version
        if resource_version in (None, "", "0"):
            snapshot = self._store.list(self._rtype.storage_key)
            initial = [("ADDED", obj) for obj in snapshot if self._matches(obj)]
        else:
            past = self._store.events_since(self._rtype.storage_key, int(resource_version))
            if past is None:
                await self._send_error(response, errors.expired(
                    f"too old resource version: {resource_version} ({covered_up_to})"))
                return
            initial = [change for event in past if (change := visible_change(event, self._matches))]
        for event_type, obj in initial:
            await self._send(response, event_type, obj)

        loop = asyncio.get_running_loop()
        deadline = None if timeout_seconds is None else loop.time() + timeout_seconds
        while True:
            remaining = None if deadline is None else deadline - loop.time()
            if remaining is not None and remaining <= 0:
                return
            try:
                event = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                return
            if event.resource_version <= covered_up_to:
                continue
            change = visible_change(event, self._matches)
            if change is not None:
                await self._send(response, *change)

    async def _send(self, response: aiohttp.web.StreamResponse, event_type: str,
                    obj: dict[str, Any]) -> None:
        line = {"type": event_type, "object": self._present(self._rtype, obj)}
        await response.write(json.dumps(line).encode() + b"\n")

    @staticmethod
    async def _send_error(response: aiohttp.web.StreamResponse, error: errors.ApiError) -> None:
        line = {"type": "ERROR", "object": error.status_body()}
        await response.write(json.dumps(line).encode() + b"\n")
