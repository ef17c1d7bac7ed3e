"""Reading the shared data files with their shape checked, so a wrong folder fails clearly.

Every reader names the file and what it expected (which file, which fields) in its
`UniarmError`, since a user who pointed --data-root at the wrong place needs to see that.
"""

from __future__ import annotations

import csv
import gzip
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from uniarm.errors import UniarmError

FIX = "point --data-root (or UNIARM_DATA) at an unmodified copy of the shared data folder"


def require_file(folder: Path, name: str) -> Path:
    path = folder / name
    if not path.is_file():
        raise UniarmError(f"{folder.name}: expected the file {path}, which is missing", FIX)
    return path


def check_fields(records: list, required: Iterable[str], where: str) -> list[dict]:
    """Every record must be a dict with every required field; report the first that is not."""
    required = tuple(required)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise UniarmError(
                f"{where}: record {i} is a {type(record).__name__}, expected an object "
                f"with the fields {', '.join(required)}",
                FIX,
            )
        missing = [f for f in required if f not in record]
        if missing:
            raise UniarmError(
                f"{where}: record {i} lacks the field(s) {', '.join(missing)} "
                f"(expected: {', '.join(required)})",
                FIX,
            )
    return records


def read_json_records(path: Path, required: Iterable[str]) -> list[dict]:
    """A JSON file holding a list of objects, each with the `required` fields."""
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise UniarmError(f"{path} is not valid JSON: {exc}", FIX) from exc
    if not isinstance(records, list):
        raise UniarmError(
            f"{path}: expected a JSON list of records, got a {type(records).__name__}"
        )
    return check_fields(records, required, str(path))


def read_jsonl_gz_records(path: Path, required: Iterable[str]) -> list[dict]:
    """A gzip-compressed JSONL file, one object per line."""
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            lines = [line for line in f if line.strip()]
    except (OSError, EOFError) as exc:
        raise UniarmError(f"{path} is not a readable gzip file: {exc}", FIX) from exc
    records = []
    for i, line in enumerate(lines):
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise UniarmError(f"{path}: record {i} is not valid JSON: {exc}", FIX) from exc
    return check_fields(records, required, str(path))


def read_csv_records(path: Path, required: Iterable[str]) -> list[dict]:
    """A CSV file with a header row that names at least the `required` columns."""
    required = tuple(required)
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        missing = [c for c in required if c not in header]
        if missing:
            raise UniarmError(
                f"{path}: the header lacks the column(s) {', '.join(missing)} "
                f"(found: {', '.join(header) or 'no header'}; expected: {', '.join(required)})",
                FIX,
            )
        return list(reader)


def shape_error(where: str, field: str, expected: str) -> UniarmError:
    return UniarmError(f"{where}: the field {field} is not {expected}", FIX)


def winner_id(record: dict, name: str, where: str) -> int:
    """A response index field: 0 or 1 (JSON ints or bools)."""
    value = record[name]
    if value not in (0, 1) or isinstance(value, float):
        raise UniarmError(f"{where}: {name} is {value!r}, expected 0 or 1", FIX)
    return int(value)


def number(record: dict, name: str, where: str) -> float:
    value: Any = record[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UniarmError(f"{where}: {name} is {value!r}, expected a number", FIX)
    return float(value)


def text(record: dict, name: str, where: str) -> str:
    value = record[name]
    if not isinstance(value, str):
        raise UniarmError(f"{where}: {name} is a {type(value).__name__}, expected a string", FIX)
    return value.strip()
