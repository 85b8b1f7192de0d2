"""Kubernetes quantities as bytes."""

from __future__ import annotations

import pytest
from kubetune.planner import format_gib, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80Gi", 80 * 2**30),
        ("81920Mi", 80 * 2**30),
        ("85899345920", 85_899_345_920),
        ("1.5G", 1_500_000_000),
        ("1.5Gi", 3 * 2**29),
        ("64Ki", 65_536),
        ("1Ti", 2**40),
        ("500M", 500_000_000),
        ("2k", 2000),
        ("1e3", 1000),
        ("12E6", 12_000_000),
        ("100m", 1),  # 0.1 byte rounds up, as Kubernetes does
        (" 80Gi ", 80 * 2**30),
        (".5Ki", 512),
        (42, 42),
    ],
)
def test_parses(text, expected):
    assert parse_quantity(text) == expected


@pytest.mark.parametrize("text", ["", "Gi", "80 Gi", "80GB", "80gi", "eighty", "1.2.3Gi",
                                  "-1Gi", "80Gi0", True, None, 1.5, -3])  # fmt: skip
def test_rejects_with_a_clear_message(text):
    with pytest.raises(ValueError, match=r"Kubernetes quantity like 80Gi|must not be negative"):
        parse_quantity(text)


def test_formats_gib():
    assert format_gib(80 * 2**30) == "80 GiB"
    assert format_gib(21.34 * 2**30) == "21.3 GiB"
