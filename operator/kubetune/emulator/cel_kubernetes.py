"""Kubernetes' CEL libraries that cel-python lacks, for admission policies: `authorizer` and
the string functions kubetune's policies use.

- The authorizer library
  (https://kubernetes.io/docs/reference/using-api/cel/#kubernetes-authz-library,
  staging/src/k8s.io/apiserver/pkg/cel/library/authz.go):
  `authorizer.group(G).resource(R).subresource(S).namespace(NS).name(N).check(VERB)` asks the
  authorizer about the requesting user and gives a decision with `allowed()`, `reason()`,
  `errored()` and `error()`.
- From cel-go's strings extension, which Kubernetes enables
  (https://pkg.go.dev/github.com/google/cel-go/ext#Strings): `split`, `substring`, `indexOf`,
  `lowerAscii`, `replace` (every occurrence, or the first N) and `join` (of a list of
  strings, with an optional separator).

`functions(decide)` gives the cel-python function table; `Authorizer(decide, user)` is the
`authorizer` variable, where `decide(user, attributes)` answers one access check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from celpy import celtypes


@dataclass(frozen=True)
class AccessCheck:
    """The attributes of one authorizer check (authorizer.AttributesRecord)."""

    verb: str
    group: str
    resource: str
    subresource: str | None
    namespace: str | None
    name: str | None


Decide = Callable[[Any, AccessCheck], bool]


@dataclass(frozen=True)
class Authorizer:
    decide: Decide
    user: Any


@dataclass(frozen=True)
class ResourceCheck:
    authorizer: Authorizer
    group: str = ""
    resource: str = ""
    subresource: str | None = None
    namespace: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Decision:
    allowed: bool
    reason: str = ""


def _group(target: Any, group: Any) -> ResourceCheck:
    if isinstance(target, Authorizer):
        return ResourceCheck(target, group=str(group))
    return replace(target, group=str(group))


def _setter(field: str) -> Callable[[ResourceCheck, Any], ResourceCheck]:
    def set_field(target: ResourceCheck, value: Any) -> ResourceCheck:
        if not isinstance(target, ResourceCheck):
            raise TypeError(f"{field}() applies to an authorizer resource check")
        return replace(target, **{field: str(value)})
    return set_field


def _check(target: ResourceCheck, verb: Any) -> Decision:
    attributes = AccessCheck(str(verb), target.group, target.resource, target.subresource,
                             target.namespace or None, target.name or None)
    allowed = target.authorizer.decide(target.authorizer.user, attributes)
    return Decision(bool(allowed), "" if allowed else "no RBAC policy matched")


def _split(text: Any, separator: Any, limit: Any = None) -> celtypes.ListType:
    parts = str(text).split(str(separator)) if limit is None or int(limit) < 0 else (
        str(text).split(str(separator), max(int(limit) - 1, 0)) if int(limit) else [])
    return celtypes.ListType([celtypes.StringType(p) for p in parts])


def _substring(text: Any, start: Any, end: Any = None) -> celtypes.StringType:
    value = str(text)
    stop = len(value) if end is None else int(end)
    if not 0 <= int(start) <= stop <= len(value):
        raise IndexError(f"substring({start}, {stop}) out of range for {len(value)} characters")
    return celtypes.StringType(value[int(start):stop])


def _replace(text: Any, old: Any, new: Any, limit: Any = None) -> celtypes.StringType:
    count = -1 if limit is None else int(limit)
    return celtypes.StringType(str(text).replace(str(old), str(new), count))


def _join(items: Any, separator: Any = "") -> celtypes.StringType:
    if not all(isinstance(item, str) for item in items):
        raise TypeError("join() applies to a list of strings")
    return celtypes.StringType(str(separator).join(str(item) for item in items))


def functions() -> dict[str, Callable[..., Any]]:
    """The function table to pass to celpy's `Environment.program(..., functions=...)`."""
    return {
        "group": _group,
        "resource": _setter("resource"),
        "subresource": _setter("subresource"),
        "namespace": _setter("namespace"),
        "name": _setter("name"),
        "check": _check,
        "allowed": lambda decision: celtypes.BoolType(decision.allowed),
        "reason": lambda decision: celtypes.StringType(decision.reason),
        "errored": lambda decision: celtypes.BoolType(False),
        "error": lambda decision: celtypes.StringType(""),
        "split": _split,
        "substring": _substring,
        "indexOf": lambda text, sub: celtypes.IntType(str(text).find(str(sub))),
        "lowerAscii": lambda text: celtypes.StringType(str(text).lower()),
        "replace": _replace,
        "join": _join,
    }
