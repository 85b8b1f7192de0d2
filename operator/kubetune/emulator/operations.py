"""What each API verb does to the stored objects: the semantics of kube-apiserver, minus HTTP.

Every method either returns the object (or list) to send back or raises `ApiError`.
Covered here: system metadata, generateName, 409 on existing names and stale
resourceVersions, the status subresource split, finalizers and deletionTimestamp (with the
propagation policy's GC finalizers; the garbage collector itself runs asynchronously, see
garbage_collector.py), 404 for writes into missing namespaces, and CRDs that register
resources. Decoding and validation of bodies live in `admission.py` (hooked in `create`
and `_update`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from kubetune.emulator import errors, field_errors, metadata
from kubetune.emulator.admission import Admission
from kubetune.emulator.field_validation import APPLY, PATCH, FieldValidation
from kubetune.emulator.garbage_collector import deletion_finalizers
from kubetune.emulator.patches import APPLY_PATCH, STRATEGIC_MERGE_PATCH, apply_patch, media_type
from kubetune.emulator.registry import ResourceRegistry
from kubetune.emulator.resources import (
    CUSTOM_RESOURCE_DEFINITIONS,
    NAMESPACES,
    ResourceType,
    StorageKey,
    resource_types_from_crd,
)
from kubetune.emulator.selectors import Predicate
from kubetune.emulator.store import ObjectStore

Object = dict[str, Any]
# A validating admission step for one write: (old object or None on create, new object);
# it raises ApiError to refuse. The server binds the caller's identity into it.
Admit = Callable[[Object | None, Object], None]
_GENERATE_NAME_ATTEMPTS = 100
# The namespaces a new cluster has (kube-apiserver's system namespaces controller makes them).
INITIAL_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")


NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"


def _label_namespace(rtype: ResourceType, obj: Object) -> None:
    """kube-apiserver labels every Namespace with its own name, on create and on every update
    (whatever the request says), so label selectors can pick namespaces by name
    (https://kubernetes.io/docs/reference/labels-annotations-taints/#kubernetes-io-metadata-name;
    pkg/registry/core/namespace/strategy.go, PrepareForCreate/PrepareForUpdate)."""
    if rtype.storage_key != NAMESPACES.storage_key:
        return
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta.get("labels"), dict):
        meta["labels"] = {}
    meta["labels"][NAMESPACE_NAME_LABEL] = meta.get("name", "")


class ApiOperations:
    """The verbs of the Kubernetes API over an `ObjectStore`."""

    def __init__(self, store: ObjectStore, registry: ResourceRegistry) -> None:
        self.store = store
        self.registry = registry
        self.admission = Admission(store)

    # --- create ------------------------------------------------------------------------------

    def create(self, rtype: ResourceType, namespace: str | None, body: Any,
               validation: FieldValidation | None = None, admit: Admit | None = None) -> Object:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        obj = copy.deepcopy(body)
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise errors.bad_request("metadata must be an object")
        namespace = self._namespace_for_write(rtype, namespace, meta)
        obj["apiVersion"], obj["kind"] = rtype.api_version, rtype.kind
        self.admission.decode(rtype, obj, validation)
        meta = obj["metadata"]
        if namespace is not None:
            self.require_namespace(namespace)
        meta["name"] = self._name_for_create(rtype, namespace, meta)
        _label_namespace(rtype, obj)
        if rtype.storage_key == CUSTOM_RESOURCE_DEFINITIONS.storage_key:
            self._validate_crd(obj)
        if rtype.has_status:
            obj.pop("status", None)  # only /status writes status
        self.admission.validate(rtype, obj, None)
        if self.store.get(rtype.storage_key, namespace, meta["name"]) is not None:
            raise errors.already_exists(rtype.group, rtype.plural, meta["name"])
        metadata.stamp_created(obj, self.store.next_resource_version())
        self._set_initial_status(rtype, obj)
        if admit is not None:
            admit(None, obj)
        self.store.put(rtype.storage_key, obj, "ADDED")
        self._after_write(rtype, obj)
        return obj

    def ensure_namespace(self, name: str) -> None:
        """Create a namespace unless it exists (for the cluster's initial namespaces)."""
        if self.store.get(NAMESPACES.storage_key, None, name) is None:
            self.create(NAMESPACES, None, {"metadata": {"name": name}})

    def require_namespace(self, name: str) -> None:
        """The NamespaceLifecycle admission plugin: no writes into a missing namespace."""
        if self.store.get(NAMESPACES.storage_key, None, name) is None:
            raise errors.not_found("", "namespaces", name)

    def _namespace_for_write(self, rtype: ResourceType, namespace: str | None, meta: Object) -> str | None:
        if not rtype.namespaced:
            meta.pop("namespace", None)
            return None
        body_namespace = meta.get("namespace")
        if namespace is None:
            raise errors.method_not_allowed()
        if body_namespace and body_namespace != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        meta["namespace"] = namespace
        return namespace

    def _name_for_create(self, rtype: ResourceType, namespace: str | None, meta: Object) -> str:
        if meta.get("name"):
            return str(meta["name"])
        prefix = meta.get("generateName")
        if not prefix:
            raise field_errors.invalid_object(rtype.group, rtype.kind, "", [
                field_errors.required("metadata.name", "name or generateName is required")])
        # Collisions are retried here, so clients never see a 409 for a generated name.
        for _ in range(_GENERATE_NAME_ATTEMPTS):
            name = metadata.generated_name(prefix)
            if self.store.get(rtype.storage_key, namespace, name) is None:
                return name
        raise errors.already_exists(rtype.group, rtype.plural, prefix)

    def _set_initial_status(self, rtype: ResourceType, obj: Object) -> None:
        if rtype is NAMESPACES or rtype.storage_key == NAMESPACES.storage_key:
            obj["status"] = {"phase": "Active"}
        elif rtype.storage_key == ("", "pods"):
            obj["status"] = {"phase": "Pending"}
        elif rtype.storage_key == CUSTOM_RESOURCE_DEFINITIONS.storage_key:
            obj["status"] = _crd_status(obj)

    # --- read --------------------------------------------------------------------------------

    def get(self, rtype: ResourceType, namespace: str | None, name: str) -> Object:
        return self.present(rtype, self._require(rtype, namespace, name))

    def list(self, rtype: ResourceType, namespace: str | None, predicate: Predicate) -> Object:
        scope = namespace if rtype.namespaced else None
        items = [obj for obj in self.store.list(rtype.storage_key, scope) if predicate(obj)]
        items.sort(key=lambda obj: (obj["metadata"].get("namespace") or "", obj["metadata"]["name"]))
        return {
            "kind": rtype.list_kind,
            "apiVersion": rtype.api_version,
            "metadata": {"resourceVersion": str(self.store.resource_version)},
            "items": [self.present(rtype, obj) for obj in items],
        }

    @staticmethod
    def present(rtype: ResourceType, obj: Object) -> Object:
        """The object as seen through `rtype`'s version (one storage, many served versions)."""
        if obj.get("apiVersion") == rtype.api_version:
            return obj
        return {**obj, "apiVersion": rtype.api_version}

    def _require(self, rtype: ResourceType, namespace: str | None, name: str) -> Object:
        if rtype.namespaced and namespace is None:
            raise errors.unknown_resource()
        obj = self.store.get(rtype.storage_key, namespace if rtype.namespaced else None, name)
        if obj is None:
            raise errors.not_found(rtype.group, rtype.plural, name)
        return obj

    # --- update ------------------------------------------------------------------------------

    def replace(self, rtype: ResourceType, namespace: str | None, name: str, body: Any,
                subresource: str | None, validation: FieldValidation | None = None,
                admit: Admit | None = None) -> Object:
        if not isinstance(body, dict):
            raise errors.bad_request("the request body must be a JSON object")
        return self._update(rtype, namespace, name, subresource, lambda old: body, validation, admit)

    def patch(self, rtype: ResourceType, namespace: str | None, name: str, patch: Any,
              content_type: str, subresource: str | None,
              validation: FieldValidation | None = None, admit: Admit | None = None) -> Object:
        kind = media_type(content_type)
        if kind == STRATEGIC_MERGE_PATCH and self.admission.is_custom(rtype):
            # Custom resources have no Go struct to carry patch strategies (patch.go).
            raise errors.unsupported_media_type(errors.CUSTOM_RESOURCE_PATCH_TYPES)
        if validation is not None:
            validation.verb = APPLY if kind == APPLY_PATCH else PATCH
        exists = self.store.get(rtype.storage_key, namespace if rtype.namespaced else None, name)
        if exists is None and kind == APPLY_PATCH and subresource is None:
            # Server-side apply creates what is missing.
            body = copy.deepcopy(patch)
            body.setdefault("metadata", {})["name"] = name
            return self.create(rtype, namespace, body, validation, admit)
        return self._update(
            rtype, namespace, name, subresource, lambda old: apply_patch(old, patch, content_type),
            validation, admit,
        )

    def _update(self, rtype: ResourceType, namespace: str | None, name: str,
                subresource: str | None, make_new: Callable[[Object], Object],
                validation: FieldValidation | None = None, admit: Admit | None = None) -> Object:
        if subresource is not None and (subresource != "status" or not rtype.has_status):
            raise errors.unknown_resource()
        old = self._require(rtype, namespace, name)
        candidate = copy.deepcopy(make_new(old))
        meta = candidate.get("metadata")
        if meta is None:
            meta = candidate["metadata"] = {}
        sent_version = meta.get("resourceVersion")
        if sent_version and sent_version != old["metadata"]["resourceVersion"]:
            raise errors.stale_resource_version(rtype.group, rtype.plural, name)
        if meta.get("name", name) != name:
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        self._namespace_for_write(rtype, namespace, meta)
        meta["name"] = name

        if subresource == "status":
            new = copy.deepcopy(old)
            if "status" in candidate:
                new["status"] = candidate["status"]
            else:
                new.pop("status", None)
        else:
            new = candidate
            if rtype.has_status:
                if "status" in old:
                    new["status"] = copy.deepcopy(old["status"])
                else:
                    new.pop("status", None)
        new["apiVersion"], new["kind"] = rtype.api_version, rtype.kind
        _label_namespace(rtype, new)
        self.admission.decode(rtype, new, validation, merged=candidate)
        self.admission.validate(rtype, new, old)
        metadata.carry_system_fields(old, new)
        if admit is not None:
            admit(old, new)
        if new == old:
            return self.present(rtype, old)  # a no-op write keeps the resourceVersion

        new["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
        self.store.put(rtype.storage_key, new, "MODIFIED")
        self._after_write(rtype, new)
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            return self.present(rtype, self._remove(rtype.storage_key, new))
        return self.present(rtype, new)

    # --- delete ------------------------------------------------------------------------------

    def delete(self, rtype: ResourceType, namespace: str | None, name: str,
               options: Object) -> Object:
        """Remove the object, or mark it deleting while finalizers remain. Its dependents are
        left to the garbage collector (garbage_collector.py), which runs afterwards."""
        obj = self._require(rtype, namespace, name)
        preconditions = options.get("preconditions") or {}
        meta = obj["metadata"]
        if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
            raise errors.conflict(rtype.group, rtype.plural, name, "Precondition failed: UID mismatch")
        expected_version = preconditions.get("resourceVersion")
        if expected_version and expected_version != meta["resourceVersion"]:
            raise errors.stale_resource_version(rtype.group, rtype.plural, name)
        finalizers = deletion_finalizers(rtype, list(meta.get("finalizers") or []), options)
        if rtype.storage_key == NAMESPACES.storage_key:
            self._delete_namespace_contents(name)
        return self.present(rtype, self._begin_deletion(rtype.storage_key, obj, finalizers))

    def delete_collection(self, rtype: ResourceType, namespace: str | None,
                          predicate: Predicate, options: Object) -> Object:
        listing = self.list(rtype, namespace, predicate)
        for item in listing["items"]:
            item_meta = item["metadata"]
            if self.store.get(rtype.storage_key, item_meta.get("namespace"), item_meta["name"]):
                self.delete(rtype, item_meta.get("namespace"), item_meta["name"], options)
        return listing

    def delete_stored(self, storage_key: StorageKey, obj: Object, policy: str) -> Object:
        """Delete a stored object with a propagation policy (the garbage collector's DELETE)."""
        rtype = next((t for t in self.registry if t.storage_key == storage_key), None)
        finalizers = list(obj["metadata"].get("finalizers") or [])
        if rtype is not None:
            finalizers = deletion_finalizers(rtype, finalizers, {"propagationPolicy": policy})
        return self._begin_deletion(storage_key, obj, finalizers)

    def _begin_deletion(self, storage_key: StorageKey, obj: Object,
                        finalizers: list[str] | None = None) -> Object:
        """Remove the object, or only mark it with deletionTimestamp while finalizers remain
        (`finalizers`: what it must have from now on, GC finalizers of the policy included)."""
        meta = obj["metadata"]
        if finalizers is None:
            finalizers = list(meta.get("finalizers") or [])
        if not finalizers:
            return self._remove(storage_key, obj)
        if meta.get("deletionTimestamp") and finalizers == list(meta.get("finalizers") or []):
            return obj
        marked = copy.deepcopy(obj)
        marked["metadata"]["finalizers"] = finalizers
        marked["metadata"].setdefault("deletionTimestamp", metadata.now_rfc3339())
        marked["metadata"].setdefault("deletionGracePeriodSeconds", 0)
        marked["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
        self.store.put(storage_key, marked, "MODIFIED")
        return marked

    def _remove(self, storage_key: StorageKey, obj: Object) -> Object:
        """Drop an object from the store (the garbage collector later sees to its dependents);
        a CRD takes its custom resources with it."""
        meta = obj["metadata"]
        final_state = {**obj, "metadata": {
            **meta, "resourceVersion": str(self.store.next_resource_version())}}
        self.store.remove(storage_key, final_state)
        if storage_key == CUSTOM_RESOURCE_DEFINITIONS.storage_key:
            for key, custom in self._forget_crd(final_state):
                custom_meta = custom["metadata"]
                if self.store.get(key, custom_meta.get("namespace"), custom_meta["name"]) is custom:
                    self._remove(key, custom)
        return final_state

    def remove_finalizer(self, storage_key: StorageKey, obj: Object, finalizer: str) -> Object:
        """Take one finalizer off (a controller's update); the last one going removes a
        deleting object."""
        new = copy.deepcopy(obj)
        remaining = [f for f in new["metadata"].get("finalizers") or [] if f != finalizer]
        if remaining:
            new["metadata"]["finalizers"] = remaining
        else:
            new["metadata"].pop("finalizers", None)
        new["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
        self.store.put(storage_key, new, "MODIFIED")
        if new["metadata"].get("deletionTimestamp") and not remaining:
            return self._remove(storage_key, new)
        return new

    def rewrite_owner_references(self, key: StorageKey, obj: Object, refs: list[Object]) -> None:
        """Store `obj` with these ownerReferences (the garbage collector's patch)."""
        new = copy.deepcopy(obj)
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            new["metadata"].pop("ownerReferences", None)
        new["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
        self.store.put(key, new, "MODIFIED")

    def _delete_namespace_contents(self, namespace: str) -> None:
        """The namespace controller's job, done at once: everything in it is deleted."""
        for key in self.store.storage_keys():
            for obj in self.store.list(key, namespace):
                current = self.store.get(key, namespace, obj["metadata"]["name"])
                if current is not None:
                    self._begin_deletion(key, current)

    # --- CustomResourceDefinitions -----------------------------------------------------------

    def _after_write(self, rtype: ResourceType, obj: Object) -> None:
        if rtype.storage_key == CUSTOM_RESOURCE_DEFINITIONS.storage_key:
            spec = obj["spec"]
            self.registry.replace_plural(
                spec["group"], spec["names"]["plural"], resource_types_from_crd(obj))

    def _forget_crd(self, crd: Object) -> list[tuple[StorageKey, Object]]:
        """Unregister a deleted CRD's resource; its objects go with it."""
        spec = crd["spec"]
        key = (spec["group"], spec["names"]["plural"])
        self.registry.unregister_plural(*key)
        return [(key, obj) for obj in self.store.list(key)]

    @staticmethod
    def _validate_crd(crd: Object) -> None:
        spec = crd.get("spec") or {}
        names = spec.get("names") or {}
        name = crd["metadata"]["name"]
        group, plural = spec.get("group"), names.get("plural")
        if not (group and plural and names.get("kind") and spec.get("versions")):
            raise errors.invalid(
                "apiextensions.k8s.io", "customresourcedefinitions", name,
                "spec.group, spec.names.plural, spec.names.kind and spec.versions are required",
            )
        if name != f"{plural}.{group}":
            raise errors.invalid(
                "apiextensions.k8s.io", "customresourcedefinitions", name,
                f"metadata.name: Invalid value: must be <spec.names.plural>.<spec.group>"
                f" ({plural}.{group})",
            )


def _crd_status(crd: Object) -> Object:
    """What kube-apiserver reports once a CRD is served (`kubectl wait` checks Established)."""
    now = metadata.now_rfc3339()
    spec = crd["spec"]
    return {
        "acceptedNames": spec.get("names", {}),
        "storedVersions": [v["name"] for v in spec.get("versions", []) if v.get("storage", True)],
        "conditions": [
            {"type": kind, "status": "True", "reason": reason, "lastTransitionTime": now,
             "message": message}
            for kind, reason, message in (
                ("NamesAccepted", "NoConflicts", "no conflicts found"),
                ("Established", "InitialNamesAccepted", "the initial names have been accepted"),
            )
        ],
    }
