"""Documents for training: (name, text) pairs from text/Markdown files, JSONL fields and Parquet columns."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

TEXT_SUFFIXES = {".txt", ".md", ".markdown", ".rst", ".text"}


class SourceError(ValueError):
    """Input that cannot be read as documents: the message names the file (and line or column)."""


def iter_documents(
    paths: Iterable[Path], field: str = "text", column: str = "text"
) -> Iterator[tuple[str, str]]:
    """Every document of ``paths`` (files, or folders searched recursively), in a stable order.

    A text/Markdown file is one document; a JSONL line is one document (its ``field``); a Parquet
    row is one document (its ``column``). Empty documents are skipped; a source with none is an error.
    """
    for path in paths:
        path = Path(path)
        if not path.exists():
            raise SourceError(f"{path}: no such file or folder")
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        found = 0
        for file in files:
            for name, text in _read(file, field, column, strict=not path.is_dir()):
                if text.strip():
                    found += 1
                    yield name, text
        if found == 0:
            raise SourceError(f"{path}: no non-empty documents found")


def _read(file: Path, field: str, column: str, strict: bool) -> Iterator[tuple[str, str]]:
    suffix = file.suffix.lower()
    if suffix in TEXT_SUFFIXES:
        yield str(file), _decode(file)
    elif suffix == ".jsonl":
        yield from _jsonl(file, field)
    elif suffix == ".parquet":
        yield from _parquet(file, column)
    elif strict:
        raise SourceError(f"{file}: unsupported file type {suffix!r} (use .txt, .md, .jsonl or .parquet)")


def _decode(file: Path) -> str:
    try:
        return file.read_bytes().decode("utf-8")
    except UnicodeDecodeError as error:
        raise SourceError(f"{file}: not UTF-8 text (byte {error.start}: {error.reason})") from None


def _jsonl(file: Path, field: str) -> Iterator[tuple[str, str]]:
    for number, line in enumerate(_decode(file).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            raise SourceError(f"{file}:{number}: not valid JSON ({error.msg})") from None
        value = record.get(field) if isinstance(record, dict) else None
        if not isinstance(value, str):
            raise SourceError(f"{file}:{number}: no string field {field!r} (choose one with --field)")
        yield f"{file}:{number}", value


def _parquet(file: Path, column: str) -> Iterator[tuple[str, str]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise SourceError(f"{file}: reading Parquet needs pyarrow (pip install pyarrow)") from None
    table = pq.read_table(file)
    if column not in table.column_names:
        raise SourceError(f"{file}: no column {column!r} (columns: {', '.join(table.column_names)})")
    for row, value in enumerate(table.column(column).to_pylist()):
        if value is not None and not isinstance(value, str):
            raise SourceError(f"{file}: row {row} of column {column!r} is not text")
        yield f"{file}#{row}", value or ""
