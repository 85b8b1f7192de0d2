"""Kubernetes resource quantities ("80Gi", "81920Mi", "1.5G", "85899345920") as bytes.

The grammar is the one of k8s.io/apimachinery `resource.Quantity`: a signed decimal number
followed by a binary suffix (Ki..Ei), a decimal suffix (n, u, m, "", k, M, G, T, P, E) or a
decimal exponent (e3, E6). Byte counts are whole numbers, so fractions are rounded up, the
way Kubernetes rounds a quantity when it reads it as an integer.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal(10**3),
    "M": Decimal(10**6),
    "G": Decimal(10**9),
    "T": Decimal(10**12),
    "P": Decimal(10**15),
    "E": Decimal(10**18),
}
_QUANTITY = re.compile(
    r"^(?P<number>[+-]?(?:\d+(?:\.\d*)?|\.\d+))"
    r"(?:(?P<suffix>Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])|[eE](?P<exponent>[+-]?\d+))?$"
)

QUANTITY_HINT = "must be a Kubernetes quantity like 80Gi"


def parse_quantity(value: str | int) -> int:
    """Return the number of bytes in `value`; raise ValueError saying what is accepted."""
    if isinstance(value, bool):  # bool is an int subclass; True is not a memory size
        raise ValueError(f"{value!r} {QUANTITY_HINT}")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value!r}: must not be negative")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{value!r} {QUANTITY_HINT}")
    match = _QUANTITY.match(value.strip())
    if not match:
        raise ValueError(f"{value!r} {QUANTITY_HINT} (e.g. 80Gi, 81920Mi, 1.5G, 85899345920)")
    try:
        number = Decimal(match["number"])
    except InvalidOperation as exc:  # the regex should make this unreachable
        raise ValueError(f"{value!r} {QUANTITY_HINT}") from exc
    if number < 0:
        raise ValueError(f"{value!r}: must not be negative")
    if match["exponent"] is not None:
        scaled = number.scaleb(int(match["exponent"]))
    else:
        suffix = match["suffix"] or ""
        scaled = number * (_BINARY[suffix] if suffix in _BINARY else _DECIMAL[suffix])
    return math.ceil(scaled)


def format_gib(n_bytes: float, digits: int = 1) -> str:
    """`80 GiB` for whole numbers, `21.3 GiB` otherwise: how messages show sizes."""
    gib = n_bytes / 2**30
    if gib == int(gib):
        return f"{int(gib)} GiB"
    return f"{gib:.{digits}f} GiB"
