"""Watch streams: `?watch=true` answered with one JSON event per line, as kube-apiserver does.

Semantics kept from the real server, because kopf and the `kubernetes` client rely on them:
- without a resourceVersion (or with "0"), the stream starts with ADDED for every existing
  object, then follows changes;
- with a resourceVersion, it replays the changes after it from the history ring, or sends
  an ERROR event with a 410 Expired Status when that history is gone (clients then re-list);
- with selectors, an object that starts matching arrives as ADDED and one that stops
  matching as DELETED;
- `timeoutSeconds` ends the stream cleanly;
- with `allowWatchBookmarks=true`, a BOOKMARK event (an object of the watched kind with only
  `metadata.resourceVersion`) comes every `bookmark_interval` seconds while nothing else
  does, and once just before a timeout ends the stream, so a client resumes from a recent
  resourceVersion instead of an old one that may be gone (kube-apiserver's watch cache
  sends one about every minute and before the timeout).
Injected faults (faults.py): `gone` answers a resume with the 410 ERROR event, `cut` drops
the connection mid-stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Callable
from typing import Any

import aiohttp.web

from kubetune.emulator import errors
from kubetune.emulator.faults import Fault
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
        self._bookmark_interval: float | None = None
        self._fault: Fault | None = None
        self._cut = False
        self._sent = 0

    async def serve(self, raw_request: aiohttp.web.BaseRequest, resource_version: str | None,
                    timeout_seconds: float | None, *, bookmark_interval: float | None = None,
                    fault: Fault | None = None) -> aiohttp.web.StreamResponse:
        if resource_version not in (None, "", "0") and not resource_version.isdigit():
            raise errors.bad_request(f"invalid resourceVersion: {resource_version!r}")
        key = self._rtype.storage_key
        # Subscribe before taking the snapshot: nothing awaits in between, so no event is lost,
        # and events already covered by the snapshot are skipped by their resourceVersion.
        queue = self._store.subscribe(key)
        try:
            response = aiohttp.web.StreamResponse(headers={"Content-Type": "application/json"})
            response.enable_chunked_encoding()
            self._bookmark_interval = bookmark_interval
            self._fault = fault
            with contextlib.suppress(ConnectionError):  # the client went away (or was killed)
                await response.prepare(raw_request)
                await self._stream(response, queue, resource_version, timeout_seconds)
            if self._cut and raw_request.transport is not None:
                # No terminating chunk: the client sees the connection drop mid-stream.
                raw_request.transport.abort()
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
            if past is None or self._fault_is("gone"):
                await self._send_error(response, errors.expired(
                    f"too old resource version: {resource_version} ({covered_up_to})"))
                return
            initial = [change for event in past if (change := visible_change(event, self._matches))]
        for event_type, obj in initial:
            await self._send(response, event_type, obj)
            if self._cut_now():
                return

        loop = asyncio.get_running_loop()
        deadline = None if timeout_seconds is None else loop.time() + timeout_seconds
        cut_at = None
        if self._fault_is("cut"):
            assert self._fault is not None
            cut_at = loop.time() + self._fault.cut_after_seconds
        next_bookmark = None if self._bookmark_interval is None else loop.time() + self._bookmark_interval
        while True:
            now = loop.time()
            if cut_at is not None and now >= cut_at:
                self._cut = True
                return
            at_deadline = deadline is not None and now >= deadline
            # Only with an empty queue is every change up to the store's resourceVersion sent,
            # so that a client resuming from the bookmark misses nothing.
            if queue.empty() and next_bookmark is not None and (at_deadline or now >= next_bookmark):
                await self._send_bookmark(response)
                next_bookmark = now + self._bookmark_interval
            if at_deadline:
                return
            if not queue.empty():
                # Not through wait_for(queue.get(), 0): that cancels the get before it runs,
                # so a waiting change would never be taken (the stream would spin until its
                # deadline).
                event = queue.get_nowait()
            else:
                # Wake for the first of: a change, the deadline, the cut, the next bookmark.
                wakes = [t for t in (deadline, cut_at, next_bookmark) if t is not None]
                remaining = max(0.0, min(wakes) - now) if wakes else None
                try:
                    event = await asyncio.wait_for(queue.get(), remaining)
                except TimeoutError:
                    continue
            if event.resource_version <= covered_up_to:
                continue
            change = visible_change(event, self._matches)
            if change is not None:
                await self._send(response, *change)
                if self._cut_now():
                    return

    def _fault_is(self, kind: str) -> bool:
        return self._fault is not None and self._fault.kind == kind

    def _cut_now(self) -> bool:
        """Whether an injected cut is due after the events sent so far."""
        if self._fault_is("cut") and self._fault is not None \
                and self._sent >= self._fault.cut_after_events:
            self._cut = True
        return self._cut

    async def _send(self, response: aiohttp.web.StreamResponse, event_type: str,
                    obj: dict[str, Any]) -> None:
        line = {"type": event_type, "object": self._present(self._rtype, obj)}
        await response.write(json.dumps(line).encode() + b"\n")
        self._sent += 1

    async def _send_bookmark(self, response: aiohttp.web.StreamResponse) -> None:
        bookmark = {"kind": self._rtype.kind, "apiVersion": self._rtype.api_version,
                    "metadata": {"resourceVersion": str(self._store.resource_version)}}
        line = {"type": "BOOKMARK", "object": bookmark}
        await response.write(json.dumps(line).encode() + b"\n")

    @staticmethod
    async def _send_error(response: aiohttp.web.StreamResponse, error: errors.ApiError) -> None:
        line = {"type": "ERROR", "object": error.status_body()}
        await response.write(json.dumps(line).encode() + b"\n")
