"""Where and as what a job's pods may run: the operator's allowlists.

`spec.image`, `resources.priorityClassName`, `resources.tolerations` and
`resources.nodeSelector` are copied onto pods the operator creates. Without a limit, a user
with FinetuneJob rights could run any image under the operator's name, preempt other
workloads with a high PriorityClass (which RBAC cannot restrict: pods name it, nobody `get`s
it), or land on nodes reserved by taints or labels. Each is allowed only as the operator's
configuration permits; the defaults permit exactly what the operator does by default (its own
trainer image, no priority class, no toleration, no node selector of the job's own).

A glob's `*` matches any run of characters (slashes and colons included); nothing else is
special. A toleration key or node-selector key `*` permits every key, and a toleration without
a key (it tolerates every taint) needs `*`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PlacementPolicy:
    """What the platform permits; see the module docstring for the matching rules."""

    images: tuple[str, ...]
    """Globs; a job's spec.image must match one."""
    priority_classes: tuple[str, ...] = ()
    toleration_keys: tuple[str, ...] = ()
    node_selector_keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class PlacementRule:
    field: str
    """Dotted path from the object's root."""
    setting: str
    """The operator's environment variable."""
    chart_value: str
    """The Helm value that sets it."""

    @property
    def path(self) -> tuple[str, ...]:
        return tuple(self.field.split("."))

    @property
    def message(self) -> str:
        return (f"{self.field}: not permitted by the operator's configuration "
                f"({self.setting}, chart value {self.chart_value})")


IMAGE = PlacementRule("spec.image", "KUBETUNE_ALLOWED_IMAGES", "trainer.allowedImages")
PRIORITY_CLASS = PlacementRule("spec.resources.priorityClassName",
                               "KUBETUNE_ALLOWED_PRIORITY_CLASSES", "trainer.allowedPriorityClasses")
TOLERATIONS = PlacementRule("spec.resources.tolerations", "KUBETUNE_ALLOWED_TOLERATION_KEYS",
                            "trainer.allowedTolerationKeys")
NODE_SELECTOR = PlacementRule("spec.resources.nodeSelector", "KUBETUNE_ALLOWED_NODE_SELECTOR_KEYS",
                              "trainer.allowedNodeSelectorKeys")
PLACEMENT_RULES = (IMAGE, PRIORITY_CLASS, TOLERATIONS, NODE_SELECTOR)
"""The same fields on FinetuneJob and EvalJob."""


_REGEX_META = frozenset("\\.+*?()|[]{}^$")


def _quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta, which the chart uses (Helm's regexQuoteMeta): same text both ways."""
    return "".join(f"\\{char}" if char in _REGEX_META else char for char in text)


def glob_regex(glob: str) -> str:
    """An anchored regular expression (RE2 and Python alike) matching what `glob` matches."""
    return "^" + ".*".join(_quote_meta(part) for part in glob.split("*")) + "$"


def image_allowed(image: str, globs: tuple[str, ...]) -> bool:
    return any(re.match(glob_regex(glob), image) for glob in globs)


def _key_allowed(key: str, allowed: tuple[str, ...]) -> bool:
    return "*" in allowed or (bool(key) and key in allowed)


def _value(obj: dict[str, Any] | None, rule: PlacementRule) -> Any:
    node: Any = obj
    for key in rule.path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node


def _permitted(rule: PlacementRule, value: Any, policy: PlacementPolicy) -> bool:
    if rule is IMAGE:
        return not value or image_allowed(value, policy.images)
    if rule is PRIORITY_CLASS:
        return not value or value in policy.priority_classes
    if rule is TOLERATIONS:
        return all(_key_allowed(t.get("key") or "", policy.toleration_keys) for t in value or [])
    return all(_key_allowed(key, policy.node_selector_keys) for key in value or {})


def _allowed_text(rule: PlacementRule, policy: PlacementPolicy) -> str:
    allowed = {IMAGE: policy.images, PRIORITY_CLASS: policy.priority_classes,
               TOLERATIONS: policy.toleration_keys, NODE_SELECTOR: policy.node_selector_keys}[rule]
    return ", ".join(allowed) if allowed else "none"


def placement_problems(obj: dict[str, Any], policy: PlacementPolicy,
                       old: dict[str, Any] | None = None) -> list[str]:
    """`FIELD: what must hold` for each placement field `obj` sets beyond the policy.
    With `old` (an update), a field left as it was is not judged again."""
    problems = []
    for rule in PLACEMENT_RULES:
        value = _value(obj, rule)
        if old is not None and _value(old, rule) == value:
            continue
        if not _permitted(rule, value, policy):
            problems.append(f"{rule.message}; allowed: {_allowed_text(rule, policy)}")
    return problems
