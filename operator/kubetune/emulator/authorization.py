"""Who is calling and may they: bearer-token authentication and the RBAC authorizer.

With `ApiServerEmulator(rbac=True)` the emulator runs as kube-apiserver with
`--authorization-mode=RBAC` and a static token file: each request's `Authorization: Bearer`
token names a user (unknown token: 401), and a user outside `system:masters` may do only
what the ClusterRoles/Roles bound to it allow, read from the stored
rbac.authorization.k8s.io/v1 objects at each request. Without `rbac` every request is
allowed, as with `--authorization-mode=AlwaysAllow`.

The emulator serves plain HTTP, and kubectl (client-go's clientcmd) sends kubeconfig
credentials only over TLS, so a request without credentials is served as kube-apiserver's
former local insecure port served it: as the cluster admin. kubectl acts as another user
with impersonation (`kubectl --as=system:serviceaccount:NS:NAME`, headers
`Impersonate-User`/`Impersonate-Group`), which only `system:masters` may use here.

The rules follow https://kubernetes.io/docs/reference/access-authn-authz/rbac/ and its
source (plugin/pkg/auth/authorizer/rbac/rbac.go, pkg/apis/rbac/v1/evaluation_helpers.go):

- verbs, apiGroups, resources and resourceNames match exactly or by `*`; a subresource
  is `resource/subresource` (or `*/subresource`); resourceNames never match a request
  without a name (create, list, watch, deletecollection);
- a ClusterRoleBinding grants its ClusterRole everywhere; a RoleBinding grants its Role or
  ClusterRole in its own namespace only;
- subjects are User, Group or ServiceAccount (`system:serviceaccount:NS:NAME`, in groups
  `system:serviceaccounts`, `system:serviceaccounts:NS` and `system:authenticated`).

A denial is a 403 with kube-apiserver's message
(staging/src/k8s.io/apiserver/pkg/endpoints/handlers/responsewriters/errors.go):

    jobs.batch is forbidden: User "system:serviceaccount:ns:sa" cannot create resource
    "jobs" in API group "batch" in the namespace "team-a"

Not modelled: aggregated ClusterRoles (aggregationRule), the escalation check on writing
roles, non-resource URLs (discovery, /version, /openapi: allowed to every authenticated user,
as the bootstrap `system:discovery` role does), impersonation, and JWT service-account
tokens (tokens here are opaque strings minted by `issue_token`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from kubetune.emulator import errors
from kubetune.emulator.kubeconfig import DUMMY_TOKEN
from kubetune.emulator.resources import ResourceType
from kubetune.emulator.store import ObjectStore

Object = dict[str, Any]
RBAC_GROUP = "rbac.authorization.k8s.io"
MASTERS = "system:masters"
AUTHENTICATED = "system:authenticated"
ADMIN_USER = "kubernetes-admin"


def _rbac(plural: str, kind: str, namespaced: bool) -> ResourceType:
    return ResourceType(RBAC_GROUP, "v1", plural, kind, namespaced, kind.lower())


CLUSTER_ROLES = _rbac("clusterroles", "ClusterRole", namespaced=False)
CLUSTER_ROLE_BINDINGS = _rbac("clusterrolebindings", "ClusterRoleBinding", namespaced=False)
ROLES = _rbac("roles", "Role", namespaced=True)
ROLE_BINDINGS = _rbac("rolebindings", "RoleBinding", namespaced=True)
RBAC_RESOURCES = (CLUSTER_ROLES, CLUSTER_ROLE_BINDINGS, ROLES, ROLE_BINDINGS)


@dataclass(frozen=True)
class User:
    name: str
    groups: tuple[str, ...] = ()

    @property
    def is_master(self) -> bool:
        return MASTERS in self.groups


# The kubeconfig that write_kubeconfig writes (kubectl, the executor, tests): a cluster admin.
ADMIN = User(ADMIN_USER, (MASTERS, AUTHENTICATED))
SERVICE_ACCOUNT_PREFIX = "system:serviceaccount:"


def service_account_user(namespace: str, name: str) -> User:
    return User(f"{SERVICE_ACCOUNT_PREFIX}{namespace}:{name}",
                ("system:serviceaccounts", f"system:serviceaccounts:{namespace}", AUTHENTICATED))


def impersonated(user: User, name: str, groups: Iterable[str]) -> User:
    """The user a request impersonates (staging/src/k8s.io/apiserver/pkg/endpoints/filters/
    impersonation.go); a service-account name gets that account's groups."""
    if not user.is_master:
        raise forbidden_status("", "users", name, f'User "{user.name}" cannot impersonate resource'
                               ' "users" in API group "" at the cluster scope')
    namespace, _, account = name.removeprefix(SERVICE_ACCOUNT_PREFIX).partition(":")
    if name.startswith(SERVICE_ACCOUNT_PREFIX) and namespace and account:
        base = service_account_user(namespace, account)
        return User(base.name, (*base.groups, *groups))
    return User(name, (*groups, AUTHENTICATED))


@dataclass(frozen=True)
class Attributes:
    """What a request asks to do (the authorizer.Attributes of a resource request)."""

    verb: str
    group: str
    version: str
    resource: str
    namespace: str | None = None
    name: str | None = None
    subresource: str | None = None

    @property
    def resource_with_subresource(self) -> str:
        return f"{self.resource}/{self.subresource}" if self.subresource else self.resource


@dataclass
class Authenticator:
    """Bearer tokens to users, as kube-apiserver's `--token-auth-file`."""

    tokens: dict[str, User] = field(default_factory=lambda: {DUMMY_TOKEN: ADMIN})

    def issue_token(self, user: User) -> str:
        token = secrets.token_urlsafe(24)
        self.tokens[token] = user
        return token

    def authenticate(self, headers: Mapping[str, str]) -> User:
        """The user of a request; 401 for a token nobody issued. No credentials: the admin
        (kubectl over plain HTTP, see the module docstring)."""
        authorization_header = headers.get("Authorization")
        user: User | None = ADMIN
        if authorization_header:
            scheme, _, token = authorization_header.partition(" ")
            user = self.tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if user is None:
            raise errors.ApiError(401, "Unauthorized", "Unauthorized")
        as_user = headers.get("Impersonate-User")
        if as_user:
            groups = headers.getall("Impersonate-Group", []) if hasattr(headers, "getall") else []
            return impersonated(user, as_user, groups)
        return user


# --- the RBAC authorizer -----------------------------------------------------------------------


def _matches(values: Iterable[str], wanted: str) -> bool:
    return any(value in ("*", wanted) for value in values)


def _resource_matches(rule_resources: Iterable[str], attributes: Attributes) -> bool:
    combined = attributes.resource_with_subresource
    for resource in rule_resources:
        if resource in ("*", combined):
            return True
        if attributes.subresource and resource == f"*/{attributes.subresource}":
            return True
    return False


def rule_allows(rule: Object, attributes: Attributes) -> bool:
    """One PolicyRule against one resource request (RuleAllows in evaluation_helpers.go)."""
    if rule.get("nonResourceURLs") and not rule.get("resources"):
        return False
    if not _matches(rule.get("verbs") or (), attributes.verb):
        return False
    if not _matches(rule.get("apiGroups") or (), attributes.group):
        return False
    if not _resource_matches(rule.get("resources") or (), attributes):
        return False
    names = rule.get("resourceNames") or []
    return not names or (attributes.name is not None and attributes.name in names)


def _subject_matches(subject: Object, user: User, binding_namespace: str | None) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == user.name
    if kind == "Group":
        return subject.get("name") in user.groups
    if kind == "ServiceAccount":
        # A ServiceAccount subject without a namespace means the binding's own (RoleBinding).
        namespace = subject.get("namespace") or binding_namespace or ""
        return user.name == f"system:serviceaccount:{namespace}:{subject.get('name')}"
    return False


class RbacAuthorizer:
    """Decides from the Roles, ClusterRoles and bindings in the store, at each request."""

    def __init__(self, store: ObjectStore) -> None:
        self.store = store

    def allows(self, user: User, attributes: Attributes) -> bool:
        if user.is_master:
            return True
        return any(rule_allows(rule, attributes) for rule in self._rules_for(user, attributes.namespace))

    def _rules_for(self, user: User, namespace: str | None) -> Iterable[Object]:
        for binding in self.store.list(CLUSTER_ROLE_BINDINGS.storage_key):
            if self._binds(binding, user, None) and binding.get("roleRef", {}).get("kind") == "ClusterRole":
                yield from self._role_rules(CLUSTER_ROLES, None, binding["roleRef"].get("name"))
        if namespace is None:
            return
        for binding in self.store.list(ROLE_BINDINGS.storage_key, namespace):
            if not self._binds(binding, user, namespace):
                continue
            ref = binding.get("roleRef") or {}
            if ref.get("kind") == "ClusterRole":
                yield from self._role_rules(CLUSTER_ROLES, None, ref.get("name"))
            elif ref.get("kind") == "Role":
                yield from self._role_rules(ROLES, namespace, ref.get("name"))

    @staticmethod
    def _binds(binding: Object, user: User, namespace: str | None) -> bool:
        return any(_subject_matches(subject, user, namespace) for subject in binding.get("subjects") or [])

    def _role_rules(self, rtype: ResourceType, namespace: str | None, name: Any) -> list[Object]:
        role = self.store.get(rtype.storage_key, namespace, str(name)) if name else None
        return list((role or {}).get("rules") or [])


def forbidden(user: User, attributes: Attributes, reason: str = "") -> errors.ApiError:
    """A 403 Status exactly as kube-apiserver writes an authorization denial."""
    where = (f'in the namespace "{attributes.namespace}"' if attributes.namespace
             else "at the cluster scope")
    message = (f'User "{user.name}" cannot {attributes.verb} resource'
               f' "{attributes.resource_with_subresource}" in API group "{attributes.group}" {where}')
    if reason:
        message = f"{message}: {reason}"
    return forbidden_status(attributes.group, attributes.resource, attributes.name, message)


def forbidden_status(group: str, resource: str, name: str | None, why: str) -> errors.ApiError:
    """apierrors.NewForbidden: `<resource>.<group> ["name"] is forbidden: <why>`."""
    qualified = f"{resource}.{group}" if group else resource
    subject = f'{qualified} "{name}"' if name else qualified
    details: Object = {"kind": resource}
    if name:
        details["name"] = name
    if group:
        details["group"] = group
    return errors.ApiError(403, "Forbidden", f"{subject} is forbidden: {why}", details)


def request_attributes(method: str, rtype: ResourceType, namespace: str | None, name: str | None,
                       subresource: str | None, query: Any, watch: bool) -> Attributes:
    """The verb and resource of an HTTP request (RequestInfoFactory.NewRequestInfo)."""
    if watch:
        verb = "watch"
    elif method == "GET":
        verb = "get" if name else "list"
    elif method == "DELETE":
        verb = "delete" if name else "deletecollection"
    else:
        verb = {"POST": "create", "PUT": "update", "PATCH": "patch"}.get(method, method.lower())
    if name is None and verb in ("list", "watch"):
        # A list or watch of one object by field selector is authorized as that name.
        for term in (query.get("fieldSelector") or "").split(","):
            key, _, value = term.partition("=")
            if key.strip() == "metadata.name" and value and not value.startswith("="):
                name = value.strip()
    if rtype.storage_key == ("", "namespaces") and name and not rtype.namespaced:
        namespace = name  # a Namespace is authorized in itself
    return Attributes(verb, rtype.group, rtype.version, rtype.plural,
                      namespace if (rtype.namespaced or rtype.plural == "namespaces") else None,
                      name, subresource)
