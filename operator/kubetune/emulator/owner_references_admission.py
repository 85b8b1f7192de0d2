"""The OwnerReferencesPermissionEnforcement admission plugin (on in OpenShift, and wherever
a cluster admin enables it), applied in the emulator's RBAC mode.

https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#ownerreferencespermissionenforcement
and its source, plugin/pkg/admission/gc/gc_admission.go:

- changing an object's ownerReferences on update (or patch) needs `delete` on the object;
- setting `blockOwnerDeletion: true` on a reference (new, or previously not blocking) needs
  `update` on the owner's `finalizers` subresource, by the owner's name, in the object's
  namespace; a user who may update `*/finalizers` of everything passes at once;
- creating an object counts as changing its references; pods/status is exempt.

Denials read as kube-apiserver's (the RBAC reason is empty and there is no error, hence
the trailing ", <nil>"):

    jobs.batch "x-train" is forbidden: cannot set blockOwnerDeletion if an ownerReference
    refers to a resource you can't set finalizers on: , <nil>
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from kubetune.emulator.authorization import Attributes, RbacAuthorizer, User, forbidden_status
from kubetune.emulator.resources import ResourceType

Object = dict[str, Any]
_EXEMPT = {("", "pods", "status")}


def _refs(obj: Object | None) -> list[Object]:
    return list(((obj or {}).get("metadata") or {}).get("ownerReferences") or [])


def _changes_owner_references(old: Object | None, new: Object) -> bool:
    return bool(_refs(new)) if old is None else _refs(old) != _refs(new)


def _new_blocking_refs(old: Object | None, new: Object) -> list[Object]:
    old_by_uid = {ref.get("uid"): ref for ref in _refs(old)}
    return [ref for ref in _refs(new) if ref.get("blockOwnerDeletion")
            and not old_by_uid.get(ref.get("uid"), {}).get("blockOwnerDeletion")]


def check(authorizer: RbacAuthorizer, user: User, request: Attributes, old: Object | None,
          new: Object, resources_of_kind: Callable[[str, str], Iterable[ResourceType]]) -> None:
    """Raise the 403 kube-apiserver answers, or return. `request` is the write being
    admitted (create, update or patch); `resources_of_kind(apiVersion, kind)` is the REST
    mapping of an owner reference."""
    if (request.group, request.resource, request.subresource or "") in _EXEMPT:
        return
    if not _changes_owner_references(old, new):
        return
    name = (new.get("metadata") or {}).get("name") or request.name

    def deny(why: str) -> None:
        raise forbidden_status(request.group, request.resource, name, why)

    if old is not None:
        delete = Attributes("delete", request.group, request.version, request.resource,
                            request.namespace, name, request.subresource)
        if not authorizer.allows(user, delete):
            deny("cannot set an ownerRef on a resource you can't delete: , <nil>")
    blocking = _new_blocking_refs(old, new)
    if not blocking:
        return
    finalize_anything = Attributes("update", "*", "*", "*", "*", "*", "finalizers")
    if authorizer.allows(user, finalize_anything):
        return
    for ref in blocking:
        api_version, kind = str(ref.get("apiVersion", "")), str(ref.get("kind", ""))
        mappings = list(resources_of_kind(api_version, kind))
        if not mappings:
            deny("cannot set blockOwnerDeletion in this case because cannot find RESTMapping for"
                 f" APIVersion {api_version} Kind {kind}: no matches for kind \"{kind}\" in"
                 f" version \"{api_version}\"")
        for owner in mappings:
            finalizers = Attributes("update", owner.group, owner.version, owner.plural,
                                    request.namespace, ref.get("name"), "finalizers")
            if not authorizer.allows(user, finalizers):
                deny("cannot set blockOwnerDeletion if an ownerReference refers to a resource"
                     " you can't set finalizers on: , <nil>")
