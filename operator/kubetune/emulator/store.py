"""In-memory object storage with the indexes that keep the emulator fast under load.

Stock kmock scans every object on each request; here objects are found by
(group, plural) -> (namespace, name) in O(1), dependents by owner uid, and watch history is a
bounded ring of recent events. Stored objects are never mutated in place: every write stores
a new dict, so events and responses can share them safely.

Everything here runs on the emulator's event loop thread; there is no locking.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kubetune.emulator.resources import StorageKey

ObjectKey = tuple[str | None, str]  # (namespace or None for cluster-scoped, name)
Address = tuple[StorageKey, str | None, str]  # where one object lives


@dataclass(frozen=True)
class StoredEvent:
    """One change, as watchers see it: `old` lets filtered watches tell ADDED from MODIFIED."""

    resource_version: int
    type: str  # ADDED, MODIFIED or DELETED
    storage_key: StorageKey
    old: dict[str, Any] | None
    new: dict[str, Any]


def owner_uids(obj: dict[str, Any]) -> set[str]:
    refs = (obj.get("metadata") or {}).get("ownerReferences") or []
    return {ref["uid"] for ref in refs if ref.get("uid")}


class ObjectStore:
    """Objects by address, plus the global resourceVersion counter and watch fan-out."""

    def __init__(self, history_size: int = 10_000) -> None:
        self._objects: dict[StorageKey, dict[ObjectKey, dict[str, Any]]] = defaultdict(dict)
        self._addresses_by_uid: dict[str, Address] = {}
        self._dependents_by_owner_uid: dict[str, set[Address]] = defaultdict(set)
        self._history: deque[StoredEvent] = deque()
        self._history_size = history_size
        self._newest_forgotten_version = 0
        self._subscribers: dict[StorageKey, set[asyncio.Queue[StoredEvent]]] = defaultdict(set)
        self._listeners: list[Callable[[StoredEvent], None]] = []
        self._last_resource_version = 0

    # --- resourceVersion ---------------------------------------------------------------------

    @property
    def resource_version(self) -> int:
        return self._last_resource_version

    def next_resource_version(self) -> int:
        self._last_resource_version += 1
        return self._last_resource_version

    # --- reading -----------------------------------------------------------------------------

    def get(self, storage_key: StorageKey, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._objects[storage_key].get((namespace, name))

    def list(self, storage_key: StorageKey, namespace: str | None = None) -> list[dict[str, Any]]:
        """All objects of a resource; in one namespace if given, else in all of them."""
        objects = self._objects[storage_key]
        if namespace is None:
            return list(objects.values())
        return [obj for (ns, _), obj in objects.items() if ns == namespace]

    def storage_keys(self) -> list[StorageKey]:
        return list(self._objects)

    def address_of_uid(self, uid: str) -> Address | None:
        return self._addresses_by_uid.get(uid)

    def dependents_of(self, owner_uid: str) -> list[Address]:
        return sorted(self._dependents_by_owner_uid.get(owner_uid, ()), key=str)

    # --- writing -----------------------------------------------------------------------------

    def put(self, storage_key: StorageKey, obj: dict[str, Any], event_type: str) -> None:
        """Store `obj` (its metadata already stamped) and tell the watchers."""
        metadata = obj["metadata"]
        key = (metadata.get("namespace"), metadata["name"])
        old = self._objects[storage_key].get(key)
        self._objects[storage_key][key] = obj
        address = (storage_key, *key)
        if old is not None:
            self._forget_dependent(old, address)
        for uid in owner_uids(obj):
            self._dependents_by_owner_uid[uid].add(address)
        self._addresses_by_uid[metadata["uid"]] = address
        self._record(StoredEvent(int(metadata["resourceVersion"]), event_type, storage_key, old, obj))

    def remove(self, storage_key: StorageKey, final_state: dict[str, Any]) -> None:
        """Drop an object; `final_state` (with a fresh resourceVersion) goes to the watchers."""
        metadata = final_state["metadata"]
        key = (metadata.get("namespace"), metadata["name"])
        old = self._objects[storage_key].pop(key)
        address = (storage_key, *key)
        self._forget_dependent(old, address)
        # Its own dependents stay indexed under its uid until garbage collection handles them.
        self._addresses_by_uid.pop(metadata["uid"], None)
        version = int(metadata["resourceVersion"])
        self._record(StoredEvent(version, "DELETED", storage_key, old, final_state))

    def _forget_dependent(self, obj: dict[str, Any], address: Address) -> None:
        for uid in owner_uids(obj):
            dependents = self._dependents_by_owner_uid.get(uid)
            if dependents is not None:
                dependents.discard(address)
                if not dependents:
                    del self._dependents_by_owner_uid[uid]

    # --- watching ----------------------------------------------------------------------------

    def add_listener(self, listener: Callable[[StoredEvent], None]) -> None:
        """Call `listener` with every change, of every resource, right after it is stored
        (the garbage collector's view: a controller's informers on everything)."""
        self._listeners.append(listener)

    def subscribe(self, storage_key: StorageKey) -> asyncio.Queue[StoredEvent]:
        queue: asyncio.Queue[StoredEvent] = asyncio.Queue()
        self._subscribers[storage_key].add(queue)
        return queue

    def unsubscribe(self, storage_key: StorageKey, queue: asyncio.Queue[StoredEvent]) -> None:
        self._subscribers[storage_key].discard(queue)

    def events_since(self, storage_key: StorageKey, version: int) -> list[StoredEvent] | None:
        """Events of one resource newer than `version`; None if some were already forgotten."""
        if version < self._newest_forgotten_version:
            return None
        newer: list[StoredEvent] = []
        for event in reversed(self._history):
            if event.resource_version <= version:
                break
            if event.storage_key == storage_key:
                newer.append(event)
        newer.reverse()
        return newer

    def _record(self, event: StoredEvent) -> None:
        self._history.append(event)
        if len(self._history) > self._history_size:
            self._newest_forgotten_version = self._history.popleft().resource_version
        for queue in self._subscribers.get(event.storage_key, ()):
            queue.put_nowait(event)
        for listener in self._listeners:
            listener(event)
