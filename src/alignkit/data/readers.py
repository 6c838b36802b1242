"""Readers for JSONL, JSON, Parquet, CSV and ``datasets.save_to_disk`` folders.

Each yields ``RawRecord(source, line, data)`` where ``line`` is the 1-based line of the record in
the file (JSONL, JSON, CSV) or its 1-based row number (Parquet, datasets folders), so every later
error can point at it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from alignkit.errors import DataError

# CSV cells of these columns may hold JSON (message lists).
_JSON_COLUMNS = {"messages", "prompt", "completion", "chosen", "rejected"}


@dataclass(frozen=True)
class RawRecord:
    source: str
    line: int
    data: dict[str, Any]


def read_records(path: str | Path) -> Iterator[RawRecord]:
    """Yields the records of a data file or ``save_to_disk`` folder, by its extension or layout."""
    path = Path(path)
    if not path.exists():
        raise DataError("file not found", source=str(path))
    if path.is_dir():
        yield from _read_hf_folder(path)
        return
    suffix = path.suffix.lower()
    readers = {".jsonl": _read_jsonl, ".ndjson": _read_jsonl, ".json": _read_json,
               ".parquet": _read_parquet, ".csv": _read_csv}
    reader = readers.get(suffix)
    if reader is None:
        raise DataError(
            f"unknown data format {suffix or '(no extension)'}: expected .jsonl, .json, .parquet, .csv "
            "or a datasets save_to_disk folder",
            source=str(path),
        )
    count = 0
    for record in reader(path):
        count += 1
        yield record
    if count == 0:
        raise DataError("no records (empty file)", source=str(path))


def _decode_line(raw: bytes, source: str, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DataError(f"not UTF-8 text (byte {exc.start})", source=source, line=line) from None


def _read_jsonl(path: Path) -> Iterator[RawRecord]:
    source = str(path)
    with open(path, "rb") as handle:
        for line_no, raw in enumerate(handle, start=1):
            text = _decode_line(raw, source, line_no).strip()
            if line_no == 1:
                text = text.lstrip("\ufeff")
            if not text:
                continue
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", source=source,
                                line=line_no) from None
            if not isinstance(value, dict):
                raise DataError(f"expected a JSON object per line, got {type(value).__name__}",
                                source=source, line=line_no)
            yield RawRecord(source, line_no, value)


def _read_json(path: Path) -> Iterator[RawRecord]:
    """A JSON array of objects; each object's line is found from its offset in the text."""
    source = str(path)
    raw = path.read_bytes()
    text = _decode_line(raw, source, raw[: _first_bad_utf8(raw)].count(b"\n") + 1).lstrip("\ufeff")
    if not text.strip():
        return
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"invalid JSON ({exc.msg} at column {exc.colno})", source=source, line=exc.lineno) from None
    if isinstance(value, dict) and isinstance(value.get("data"), list):
        value = value["data"]
    if not isinstance(value, list):
        raise DataError("expected a JSON array of records (or {\"data\": [...]})", source=source, line=1)
    decoder = json.JSONDecoder()
    lines = _array_item_lines(text, decoder)
    for index, item in enumerate(value):
        line = lines[index] if index < len(lines) else index + 1
        if not isinstance(item, dict):
            raise DataError(f"expected a JSON object, got {type(item).__name__}", source=source, line=line)
        yield RawRecord(source, line, item)


def _first_bad_utf8(raw: bytes) -> int:
    try:
        raw.decode("utf-8")
        return len(raw)
    except UnicodeDecodeError as exc:
        return exc.start


def _array_item_lines(text: str, decoder: json.JSONDecoder) -> list[int]:
    """1-based line of each top-level array element (or of each element of ``{"data": [...]}``)."""
    start = text.find("[")
    if start < 0:
        return []
    lines: list[int] = []
    position = start + 1
    while True:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        if position >= len(text) or text[position] == "]":
            return lines
        lines.append(text.count("\n", 0, position) + 1)
        try:
            _, position = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            return lines


def _read_parquet(path: Path) -> Iterator[RawRecord]:
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as exc:  # pyarrow raises several types for a broken file
        raise DataError(f"not a readable Parquet file ({type(exc).__name__})", source=str(path)) from None
    for index, row in enumerate(table.to_pylist(), start=1):
        yield RawRecord(str(path), index, row)


def _read_csv(path: Path) -> Iterator[RawRecord]:
    source = str(path)
    raw = path.read_bytes()
    bad = _first_bad_utf8(raw)
    if bad < len(raw):
        raise DataError(f"not UTF-8 text (byte {bad})", source=source, line=raw[:bad].count(b"\n") + 1)
    reader = csv.DictReader(raw.decode("utf-8").lstrip("\ufeff").splitlines(keepends=True))
    for row in reader:
        line = reader.line_num
        if None in row:
            raise DataError("more cells than header columns", source=source, line=line)
        record: dict[str, Any] = {}
        for key, value in row.items():
            if key in _JSON_COLUMNS and isinstance(value, str) and value.lstrip().startswith("["):
                try:
                    record[key] = json.loads(value)
                    continue
                except json.JSONDecodeError as exc:
                    if key != "messages":
                        # A prompt or reply may be plain text that happens to start with "[".
                        record[key] = value
                        continue
                    raise DataError(f"invalid JSON in cell ({exc.msg})", source=source, line=line,
                                    field=key) from None
            record[key] = value
        yield RawRecord(source, line, record)


def _read_hf_folder(path: Path) -> Iterator[RawRecord]:
    import datasets

    try:
        loaded = datasets.load_from_disk(str(path))
    except Exception as exc:  # datasets raises FileNotFoundError or its own errors
        raise DataError(f"not a datasets save_to_disk folder ({type(exc).__name__})", source=str(path)) from None
    if isinstance(loaded, datasets.DatasetDict):
        if "train" not in loaded:
            raise DataError(f"DatasetDict without a 'train' split (has {list(loaded)})", source=str(path))
        loaded = loaded["train"]
    for index, row in enumerate(loaded, start=1):
        yield RawRecord(str(path), index, dict(row))
