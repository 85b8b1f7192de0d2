"""Label selectors (metav1.LabelSelector): which namespaces a policy applies to.

Semantics of apimachinery's LabelSelectorAsSelector: every matchLabels pair and every
matchExpressions requirement must hold; an empty selector selects everything; `NotIn` and
`DoesNotExist` hold for a namespace without that label.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def selects(selector: Mapping[str, Any] | None, labels: Mapping[str, str] | None) -> bool:
    selector, labels = selector or {}, labels or {}
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for requirement in selector.get("matchExpressions") or []:
        key, operator = requirement.get("key"), requirement.get("operator")
        values = requirement.get("values") or []
        present = key in labels
        held = {
            "In": present and labels.get(key) in values,
            "NotIn": not (present and labels.get(key) in values),
            "Exists": present,
            "DoesNotExist": not present,
        }.get(operator, False)
        if not held:
            return False
    return True
