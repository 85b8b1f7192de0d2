"""Kubernetes' own syntax rules for the values kubetune copies into Kubernetes objects.

A spec value that becomes a label, a node selector, a toleration, a resource request, a
PriorityClass or Secret name or an image reference must pass the API server's validation of
the Job kubetune creates, or the create is rejected (422) long after `kubectl apply` said yes.
These rules are checked up front, by the models (for `kubetune validate` and the operator) and
by the CRD (OpenAPI `pattern`/`maxLength`, or CEL where a pattern cannot say it).

The rules and messages follow k8s.io/apimachinery/pkg/util/validation (IsQualifiedName,
IsValidLabelValue, IsDNS1123Subdomain), k8s.io/apimachinery/pkg/api/resource (the Quantity
grammar), pkg/apis/core/helper.IsExtendedResourceName, pkg/apis/core/validation
(ValidateTolerations) and github.com/distribution/reference (image references). No Python
library implements them faithfully: `kubernetes.utils.parse_quantity` accepts "NaN", "1_0"
and "1e3Ki", and nothing in the `kubernetes` package checks labels.

Every regular expression here is written in the subset shared by Python's `re`, Rust's
`regex` (pydantic), RE2 (the API server, and cel-python's `matches`) and ECMAScript.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any

from pydantic import AfterValidator, Field

from .base import cel

DNS_LABEL_MAX = 63
DNS_SUBDOMAIN_MAX = 253
QUALIFIED_NAME_MAX = 63
LABEL_VALUE_MAX = 63
IMAGE_NAME_MAX = 255  # distribution/reference NameTotalLengthMax (the part before :tag)
IMAGE_MAX = 1024

_DNS_LABEL = r"[a-z0-9]([-a-z0-9]*[a-z0-9])?"
DNS_SUBDOMAIN = rf"{_DNS_LABEL}(\.{_DNS_LABEL})*"
QUALIFIED_NAME_PART = r"([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
LABEL_VALUE = rf"({QUALIFIED_NAME_PART})?"
QUALIFIED_NAME = rf"({DNS_SUBDOMAIN}/)?{QUALIFIED_NAME_PART}"
# A pattern cannot bound the prefix and the name separately; this second one does.
QUALIFIED_NAME_LENGTHS = rf"([^/]{{1,{DNS_SUBDOMAIN_MAX}}}/)?[^/]{{1,{QUALIFIED_NAME_MAX}}}"
# An extended resource name must have a prefix, and "requests.<name>" must still be a
# qualified name (quota), so the prefix is at most 253 - len("requests.") characters.
EXTENDED_RESOURCE = rf"{DNS_SUBDOMAIN}/{QUALIFIED_NAME_PART}"
EXTENDED_RESOURCE_LENGTHS = (
    rf"[^/]{{1,{DNS_SUBDOMAIN_MAX - len('requests.')}}}/[^/]{{1,{QUALIFIED_NAME_MAX}}}"
)
# resource.Quantity: <signedNumber><suffix>, suffix a binary SI (Ki..Ei), decimal SI
# (n u m "" k M G T P E) or decimal exponent (e/E<signedNumber>). Requests and limits must not
# be negative (ValidateNonnegativeQuantity), so the sign may only be "+" here.
_NUMBER = r"(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
QUANTITY = rf"\+?{_NUMBER}(([KMGTPE]i)|[numkMGTPE]|([eE][+-]?{_NUMBER}))?"
# distribution/reference ReferenceRegexp (domain[:port]/path[:tag][@digest]), with \w spelled
# out as ASCII: Python's \w would also match letters RE2's does not.
_ALNUM_DOMAIN = r"([a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = rf"({_ALNUM_DOMAIN}(\.{_ALNUM_DOMAIN})*|\[[a-fA-F0-9:]+\])(:[0-9]+)?"
_PATH_COMPONENT = r"[a-z0-9]+(([._]|__|[-]+)[a-z0-9]+)*"
IMAGE_NAME = rf"({_DOMAIN}/)?{_PATH_COMPONENT}(/{_PATH_COMPONENT})*"
IMAGE = (
    rf"{IMAGE_NAME}(:[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?"
    r"(@[A-Za-z][A-Za-z0-9]*([-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9A-Fa-f]{32,})?"
)


def _full(pattern: str) -> str:
    return f"^{pattern}$"


def _matches(pattern: str, value: str) -> bool:
    return re.fullmatch(pattern, value) is not None


# --- checks: each returns what must hold, in apimachinery's words (empty: valid) -------------

def dns_subdomain_problems(value: str) -> list[str]:
    problems = []
    if len(value) > DNS_SUBDOMAIN_MAX:
        problems.append(f"must be no more than {DNS_SUBDOMAIN_MAX} characters")
    if not _matches(DNS_SUBDOMAIN, value):
        problems.append(
            "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
            "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com')")
    return problems


def qualified_name_problems(value: str) -> list[str]:
    """A label key, toleration key or annotation key: [DNS-subdomain prefix '/'] name."""
    parts = value.split("/")
    if len(parts) > 2:
        return ["a qualified name must consist of alphanumeric characters, '-', '_' or '.', "
                "and must start and end with an alphanumeric character, with an optional DNS "
                "subdomain prefix and '/' (e.g. 'example.com/MyName')"]
    problems = []
    if len(parts) == 2:
        prefix = parts[0]
        if not prefix:
            problems.append("prefix part must be non-empty")
        else:
            problems += [f"prefix part {p}" for p in dns_subdomain_problems(prefix)]
    name = parts[-1]
    if not name:
        problems.append("name part must be non-empty")
    elif len(name) > QUALIFIED_NAME_MAX:
        problems.append(f"name part must be no more than {QUALIFIED_NAME_MAX} characters")
    if name and not _matches(QUALIFIED_NAME_PART, name):
        problems.append("name part must consist of alphanumeric characters, '-', '_' or '.', and "
                        "must start and end with an alphanumeric character (e.g. 'MyName')")
    return problems


def label_value_problems(value: str) -> list[str]:
    problems = []
    if len(value) > LABEL_VALUE_MAX:
        problems.append(f"must be no more than {LABEL_VALUE_MAX} characters")
    if not _matches(LABEL_VALUE, value):
        problems.append("a valid label must be an empty string or consist of alphanumeric "
                        "characters, '-', '_' or '.', and must start and end with an alphanumeric "
                        "character (e.g. 'MyValue', 'my_value' or '12345')")
    return problems


def extended_resource_problems(value: str) -> list[str]:
    """pkg/apis/core/helper.IsExtendedResourceName, as pod validation applies it to limits."""
    if "/" not in value or "kubernetes.io/" in value:
        return ["must be an extended resource name with a vendor domain prefix, outside "
                "kubernetes.io (e.g. nvidia.com/gpu, amd.com/gpu)"]
    if value.startswith("requests."):
        return ["must not start with 'requests.' (reserved for resource quota)"]
    return qualified_name_problems("requests." + value)


def quantity_problems(value: str) -> list[str]:
    if _matches(QUANTITY, value):
        return []
    if value.startswith("-"):
        return ["must not be negative"]
    return ["must be a Kubernetes resource quantity: a number with an optional suffix Ki, Mi, Gi, "
            "Ti, Pi, Ei, n, u, m, k, M, G, T, P, E or an exponent (e.g. 500m, 8, 64Gi, 1.5G, 1e9)"]


def image_problems(value: str) -> list[str]:
    if value.strip() != value or not _matches(IMAGE, value):
        return ["must be a container image reference: [REGISTRY[:PORT]/]PATH[:TAG][@DIGEST], with a "
                "lowercase path and no spaces (e.g. ghcr.io/team/trainer:1.2)"]
    name = re.split(r"[:@]", value.split("/")[-1], maxsplit=1)[0]
    full_name = value[: value.rindex("/") + 1] + name if "/" in value else name
    if len(full_name) > IMAGE_NAME_MAX:
        return [f"repository name must be at most {IMAGE_NAME_MAX} characters"]
    return []


# --- pydantic types: the check for the models, the same rule for the CRD ---------------------

def _enforce(check: Callable[[str], list[str]]) -> Callable[[str], str]:
    def validate(value: str) -> str:
        if problems := check(value):
            raise ValueError(f"{'; '.join(problems)} (got {value!r})")
        return value
    return validate


def syntax_type(check: Callable[[str], list[str]], *, max_length: int, min_length: int = 0,
                pattern: str | None = None, rules: tuple[dict[str, str], ...] = ()) -> Any:
    """A string type checked by `check` in Python and by `pattern`/`rules` in the CRD."""
    extra: dict[str, Any] = {}
    if pattern:
        extra["pattern"] = _full(pattern)
    if rules:
        extra["x-kubernetes-validations"] = list(rules)
    return Annotated[
        str,
        Field(min_length=min_length, max_length=max_length, json_schema_extra=extra or None),
        AfterValidator(_enforce(check)),
    ]


def _qualified_name_cel(var: str) -> str:
    return (f"{var}.matches('{_full(QUALIFIED_NAME)}')"
            f" && {var}.matches('{_full(QUALIFIED_NAME_LENGTHS)}')")


QUALIFIED_NAME_RULE = cel(
    _qualified_name_cel("self"),
    "must be a qualified name: an optional DNS subdomain prefix of at most 253 characters and "
    "'/', then at most 63 alphanumeric characters, '-', '_' or '.', starting and ending with an "
    "alphanumeric character (e.g. example.com/gpu-type)",
)

DnsSubdomainName = syntax_type(dns_subdomain_problems, min_length=1, max_length=DNS_SUBDOMAIN_MAX,
                               pattern=DNS_SUBDOMAIN)
"""The name of an object in the namespace (a Secret, a PriorityClass, a FinetuneJob)."""
QueueName = syntax_type(
    lambda v: dns_subdomain_problems(v) + label_value_problems(v),
    min_length=1, max_length=LABEL_VALUE_MAX, pattern=DNS_SUBDOMAIN)
"""A Kueue LocalQueue name: an object name that is also a label value (Kueue checks both)."""
LabelValue = syntax_type(label_value_problems, max_length=LABEL_VALUE_MAX, pattern=LABEL_VALUE)
QualifiedName = syntax_type(qualified_name_problems, min_length=1,
                            max_length=DNS_SUBDOMAIN_MAX + 1 + QUALIFIED_NAME_MAX,
                            rules=(QUALIFIED_NAME_RULE,))
"""A label key or toleration key."""
ExtendedResourceName = syntax_type(
    extended_resource_problems, min_length=1,
    max_length=DNS_SUBDOMAIN_MAX - len("requests.") + 1 + QUALIFIED_NAME_MAX,
    pattern=EXTENDED_RESOURCE,
    rules=(cel(
        f"self.matches('{_full(EXTENDED_RESOURCE_LENGTHS)}') && !self.contains('kubernetes.io/')"
        " && !self.startsWith('requests.')",
        "must be an extended resource name with a vendor domain prefix, outside kubernetes.io "
        "(e.g. nvidia.com/gpu)"),),
)
Quantity = syntax_type(quantity_problems, min_length=1, max_length=64, pattern=QUANTITY)
"""A non-negative resource quantity (500m, 8, 64Gi)."""
Image = syntax_type(image_problems, min_length=1, max_length=IMAGE_MAX, pattern=IMAGE)


def label_keys_problem(labels: dict[str, str]) -> str | None:
    """Why the keys of a label map (e.g. a nodeSelector) are invalid, or None."""
    bad = {key: problems for key in labels if (problems := qualified_name_problems(key))}
    if not bad:
        return None
    return "; ".join(f"key {key!r}: {'; '.join(problems)}" for key, problems in bad.items())


def _check_label_keys(labels: dict[str, str]) -> dict[str, str]:
    if problem := label_keys_problem(labels):
        raise ValueError(problem)
    return labels


LABEL_KEYS_RULE = cel(
    f"self.all(k, {_qualified_name_cel('k')})",
    "keys must be label keys: an optional DNS subdomain prefix and '/', then at most 63 "
    "alphanumeric characters, '-', '_' or '.', starting and ending with an alphanumeric character",
)


def label_map(max_entries: int) -> Any:
    """A map copied into labels or a nodeSelector: label keys to label values."""
    return Annotated[
        dict[str, LabelValue],
        Field(max_length=max_entries, json_schema_extra={"x-kubernetes-validations": [LABEL_KEYS_RULE]}),
        AfterValidator(_check_label_keys),
    ]
