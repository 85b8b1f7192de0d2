"""Read a dataset file (.jsonl .json .csv .parquet) into rows, counting the unreadable ones.

A malformed line is reported with its line number and skipped; it never ends the run on its
own. Only an unreadable file (or one in an unknown format) raises InvalidDataset.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from ..errors import InvalidDataset

SUFFIXES = (".jsonl", ".json", ".csv", ".parquet")


@dataclass(frozen=True)
class Row:
    """One record of the file; `line` is its 1-based line (jsonl, csv) or index (json, parquet)."""

    line: int
    values: dict


@dataclass(frozen=True)
class BadRow:
    line: int
    reason: str
    detail: str


def find_data_file(path: Path) -> Path:
    """The file to read: `path` itself, or the single data file inside a folder."""
    if path.is_file():
        return path
    candidates = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    train = [p for p in candidates if "train" in p.name]
    if len(candidates) == 1 or len(train) == 1:
        return (train or candidates)[0]
    raise InvalidDataset(
        f"expected one data file ({', '.join(SUFFIXES)}) under {path}, found {len(candidates)}"
    )


def read_rows(path: Path) -> tuple[list[Row], list[BadRow]]:
    path = find_data_file(path)
    suffix = path.suffix.lower()
    readers = {".jsonl": _read_jsonl, ".json": _read_json, ".csv": _read_csv,
               ".parquet": _read_parquet}
    if suffix not in readers:
        raise InvalidDataset(f"{path.name}: unsupported file type, expected one of {SUFFIXES}")
    try:
        return readers[suffix](path)
    except UnicodeDecodeError as error:
        raise InvalidDataset(f"{path.name}: not UTF-8 text ({error.reason})") from error


def _object_or_bad(line: int, value) -> Row | BadRow:
    if isinstance(value, dict):
        return Row(line, value)
    return BadRow(line, "not an object", f"line {line}: expected a JSON object")


def _read_jsonl(path: Path) -> tuple[list[Row], list[BadRow]]:
    rows: list[Row] = []
    bad: list[BadRow] = []
    with path.open(encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as error:
                bad.append(BadRow(number, "malformed JSON", f"line {number}: {error.msg}"))
                continue
            item = _object_or_bad(number, value)
            (rows if isinstance(item, Row) else bad).append(item)
    return rows, bad


def _read_json(path: Path) -> tuple[list[Row], list[BadRow]]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        # A .json file holding JSON lines is common enough to accept.
        if _first_line_is_object(path):
            return _read_jsonl(path)
        raise InvalidDataset(
            f"{path.name}: malformed JSON ({error.msg}, line {error.lineno})"
        ) from error
    if isinstance(value, dict):
        # {"data": [...]} or {"train": [...]}: the one list-valued key holds the rows.
        lists = [v for v in value.values() if isinstance(v, list)]
        if len(lists) != 1:
            raise InvalidDataset(f"{path.name}: expected a list of objects")
        value = lists[0]
    if not isinstance(value, list):
        raise InvalidDataset(f"{path.name}: expected a list of objects")
    rows: list[Row] = []
    bad: list[BadRow] = []
    for index, item in enumerate(value, start=1):
        entry = _object_or_bad(index, item)
        (rows if isinstance(entry, Row) else bad).append(entry)
    return rows, bad


def _first_line_is_object(path: Path) -> bool:
    with path.open(encoding="utf-8") as handle:
        first = next((line for line in handle if line.strip()), "")
    try:
        return isinstance(json.loads(first), dict)
    except json.JSONDecodeError:
        return False


def _read_csv(path: Path) -> tuple[list[Row], list[BadRow]]:
    rows: list[Row] = []
    bad: list[BadRow] = []
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        for record in reader:
            line = reader.line_num
            if None in record:  # more cells than header columns
                bad.append(BadRow(line, "malformed CSV", f"line {line}: too many columns"))
                continue
            rows.append(Row(line, {k: v for k, v in record.items() if v is not None}))
    return rows, bad


def _read_parquet(path: Path) -> tuple[list[Row], list[BadRow]]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises several types for a corrupt file
        raise InvalidDataset(f"{path.name}: unreadable parquet ({error})") from error
    return [Row(i, record) for i, record in enumerate(table.to_pylist(), start=1)], []
