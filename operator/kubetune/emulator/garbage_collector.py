"""kube-controller-manager's garbage collector, run asynchronously beside the emulator.

On a real cluster the API server only marks or removes the object a DELETE names; the
garbage collector, a separate controller that watches everything, then deletes the
dependents (objects whose `metadata.ownerReferences` name the owner's uid) a moment later.
That delay is what makes `kubectl delete ftj x && kubectl apply -f x.yaml` race: the name is
free at once while the old Job still runs. The emulator reproduces it:

- DELETE sets the finalizers of the propagation policy (`deletion_finalizers`): `orphan`
  (Orphan), `foregroundDeletion` (Foreground) or none (Background, the default except for
  batch/v1 Jobs, which orphan their Pods by default for backward compatibility);
- `GarbageCollector` sees every change of the store and, `delay_seconds` later (a fraction
  of a second by default; tests may set more), does what the real controller does:
  deletes dependents whose owners are all gone (by uid: a new object with the old owner's
  name owns nothing), drops dangling references when another owner is still there, empties
  an owner with `foregroundDeletion` before releasing it (it waits only for dependents whose
  reference has `blockOwnerDeletion: true`), and strips an `orphan` owner's references from
  its dependents before releasing it.

https://kubernetes.io/docs/concepts/architecture/garbage-collection/ and
https://kubernetes.io/docs/tasks/administer-cluster/use-cascading-deletion/ describe it;
the source is pkg/controller/garbagecollector (attemptToDeleteItem,
processDeletingDependentsItem, orphanDependents) and the API side is
staging/src/k8s.io/apiserver/pkg/registry/generic/registry/store.go
(deletionFinalizersForGarbageCollection).

Not modelled: the cycle breaking between two foreground deletions that own each other, and
events such as OwnerRefInvalidNamespace (such a reference is treated as absent, as there).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import TYPE_CHECKING, Any

from kubetune.emulator import errors
from kubetune.emulator.resources import ResourceType
from kubetune.emulator.store import Address, ObjectStore, StoredEvent

if TYPE_CHECKING:
    from kubetune.emulator.operations import ApiOperations

Object = dict[str, Any]

ORPHAN_FINALIZER = "orphan"
FOREGROUND_FINALIZER = "foregroundDeletion"
GC_FINALIZERS = (ORPHAN_FINALIZER, FOREGROUND_FINALIZER)
ORPHAN, BACKGROUND, FOREGROUND = "Orphan", "Background", "Foreground"
POLICIES = (FOREGROUND, BACKGROUND, ORPHAN)
DEFAULT_DELAY_SECONDS = 0.2

# Resources whose REST strategy defaults to orphaning (DefaultGarbageCollectionPolicy):
# batch/v1 Jobs keep their Pods unless a client asks for Background or Foreground.
_ORPHAN_BY_DEFAULT = {("batch", "v1", "jobs")}


def propagation_policy(rtype: ResourceType, options: Object) -> str | None:
    """The policy a DELETE asks for (None: the object's finalizers or the default decide).

    `orphanDependents` is the deprecated boolean form; setting both is an error, as is an
    unknown policy (k8s.io/apimachinery/pkg/apis/meta/v1/validation ValidateDeleteOptions).
    """
    policy = options.get("propagationPolicy")
    orphan = options.get("orphanDependents")
    if policy is not None and orphan is not None:
        raise errors.ApiError(422, "Invalid", "DeleteOptions is invalid: propagationPolicy: Invalid"
                              f" value: \"{policy}\": orphanDependents and deletionPropagation cannot"
                              " be both set")
    if policy is not None and policy not in POLICIES:
        supported = ", ".join(f'"{value}"' for value in (*POLICIES, "nil"))
        raise errors.ApiError(422, "Invalid", f"DeleteOptions is invalid: propagationPolicy:"
                              f" Unsupported value: \"{policy}\": supported values: {supported}")
    if orphan is not None:
        return ORPHAN if orphan else BACKGROUND
    return policy


def deletion_finalizers(rtype: ResourceType, finalizers: list[str], options: Object) -> list[str]:
    """The finalizers an object gets when deleted with `options`: the GC's own two are set
    from the policy; with none given, ones already there stay, else the kind's default."""
    policy = propagation_policy(rtype, options)
    if policy is None:
        if ORPHAN_FINALIZER in finalizers or FOREGROUND_FINALIZER in finalizers:
            return list(finalizers)
        if (rtype.group, rtype.version, rtype.plural) in _ORPHAN_BY_DEFAULT:
            policy = ORPHAN
    kept = [finalizer for finalizer in finalizers if finalizer not in GC_FINALIZERS]
    if policy == ORPHAN:
        kept.append(ORPHAN_FINALIZER)
    elif policy == FOREGROUND:
        kept.append(FOREGROUND_FINALIZER)
    return kept


def _refs(obj: Object) -> list[Object]:
    return list(obj["metadata"].get("ownerReferences") or [])


def _deleting(obj: Object) -> bool:
    return bool(obj["metadata"].get("deletionTimestamp"))


def _has_finalizer(obj: Object, finalizer: str) -> bool:
    return finalizer in (obj["metadata"].get("finalizers") or [])


class GarbageCollector:
    """Watches the store and collects dependents `delay_seconds` after each relevant change.

    Runs as a task on the emulator's loop (`start()` / `stop()`); changes made before it
    starts are handled once it runs. `delay_seconds` may be changed at any time.
    """

    def __init__(self, store: ObjectStore, operations: ApiOperations,
                 delay_seconds: float = DEFAULT_DELAY_SECONDS) -> None:
        self.store = store
        self.operations = operations
        self.delay_seconds = delay_seconds
        self._due: dict[str, float] = {}  # uid to look at -> monotonic time when
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        store.add_listener(self._observe)

    # --- lifecycle ---------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="garbage-collector")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    @property
    def pending(self) -> int:
        """How many objects are waiting for the collector (0 when it has nothing to do)."""
        return len(self._due)

    # --- what to look at ---------------------------------------------------------------------

    def _observe(self, event: StoredEvent) -> None:
        """The graph builder's part: note who must be looked at after this change."""
        if event.type == "DELETED":
            # Its dependents may now be orphans; owners waiting in foreground may be free.
            self._mark(event.new["metadata"]["uid"])
            self._mark_owners(event.new)
            return
        new, old = event.new, event.old
        if old is None or _refs(old) != _refs(new):
            if _refs(new):
                self._mark(new["metadata"]["uid"])  # perhaps created with an absent owner
            self._mark_owners(new)
            if old is not None:
                self._mark_owners(old)
        if _deleting(new) and any(_has_finalizer(new, f) for f in GC_FINALIZERS):
            self._mark(new["metadata"]["uid"])

    def _mark_owners(self, obj: Object) -> None:
        for ref in _refs(obj):
            if ref.get("uid"):
                self._mark(ref["uid"])

    def _mark(self, uid: str) -> None:
        self._due.setdefault(uid, time.monotonic() + self.delay_seconds)
        self._wake.set()

    async def _run(self) -> None:
        while True:
            now = time.monotonic()
            ready = sorted((due, uid) for uid, due in self._due.items() if due <= now)
            for _, uid in ready:
                self._due.pop(uid, None)
                self._process(uid)
            if ready:
                continue
            self._wake.clear()
            timeout = min(self._due.values()) - now if self._due else None
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    # --- what the controller does ------------------------------------------------------------

    def _process(self, uid: str) -> None:
        address = self.store.address_of_uid(uid)
        obj = self.store.get(*address) if address else None
        if obj is None:
            for dependent in self.store.dependents_of(uid):
                self._attempt_to_delete(dependent)
            return
        assert address is not None
        if _deleting(obj) and _has_finalizer(obj, ORPHAN_FINALIZER):
            self._orphan_dependents(uid)
            self.operations.remove_finalizer(address[0], obj, ORPHAN_FINALIZER)
            return
        if _deleting(obj) and _has_finalizer(obj, FOREGROUND_FINALIZER):
            self._delete_dependents_first(uid, address, obj)
            return
        self._attempt_to_delete(address)

    def _owner(self, ref: Object, dependent: Object) -> Object | None:
        """The live owner a reference names, by uid. An owner in another namespace counts as
        absent: ownerReferences cannot cross namespaces."""
        address = self.store.address_of_uid(ref.get("uid", ""))
        if address is None:
            return None
        owner = self.store.get(*address)
        owner_namespace = address[1]
        if owner_namespace is not None and owner_namespace != dependent["metadata"].get("namespace"):
            return None
        return owner

    def _attempt_to_delete(self, address: Address) -> None:
        """attemptToDeleteItem: delete a dependent none of whose owners is solid."""
        dependent = self.store.get(*address)
        if dependent is None or _deleting(dependent) or not _refs(dependent):
            return
        solid, dangling, waiting = [], [], []
        for ref in _refs(dependent):
            owner = self._owner(ref, dependent)
            if owner is None:
                dangling.append(ref)
            elif _deleting(owner) and _has_finalizer(owner, FOREGROUND_FINALIZER):
                waiting.append(ref)
            else:
                solid.append(ref)
        if solid:
            if dangling or waiting:
                self.operations.rewrite_owner_references(address[0], dependent, solid)
            return
        # Owned by owners being deleted in foreground: go in foreground too, so that they
        # wait for this object's own dependents.
        if waiting and self.store.dependents_of(dependent["metadata"]["uid"]):
            policy = FOREGROUND
        elif _has_finalizer(dependent, ORPHAN_FINALIZER):
            policy = ORPHAN
        elif _has_finalizer(dependent, FOREGROUND_FINALIZER):
            policy = FOREGROUND
        else:
            policy = BACKGROUND
        self.operations.delete_stored(address[0], dependent, policy)

    def _delete_dependents_first(self, uid: str, address: Address, owner: Object) -> None:
        """processDeletingDependentsItem: delete the dependents; release the owner when none
        that blocks its deletion is left."""
        blocking = False
        for dependent_address in self.store.dependents_of(uid):
            self._attempt_to_delete(dependent_address)
            dependent = self.store.get(*dependent_address)
            if dependent is not None and any(
                    ref.get("uid") == uid and ref.get("blockOwnerDeletion") for ref in _refs(dependent)):
                blocking = True
        if not blocking:
            self.operations.remove_finalizer(address[0], owner, FOREGROUND_FINALIZER)

    def _orphan_dependents(self, uid: str) -> None:
        for dependent_address in self.store.dependents_of(uid):
            dependent = self.store.get(*dependent_address)
            if dependent is not None:
                kept = [ref for ref in _refs(dependent) if ref.get("uid") != uid]
                self.operations.rewrite_owner_references(dependent_address[0], dependent, kept)
