"""JSON and JSON Lines: every string leaf (or the selected fields), keeping its key path as structure.

Field selection uses glob patterns over dotted key paths, e.g. ``topics.*.description`` or
``*.title``; list indices appear as path segments (``topics.3.description``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any

from ember.platform.ingest.document import Block, LoadedDocument, LoaderError
from ember.platform.ingest.loaders.text import decode_text

_LABEL_KEYS = ("title", "name", "slug", "id")


def _label(key: str, value: Any) -> str:
    """A readable heading for an object: its own title or name when it has one."""
    if isinstance(value, dict):
        for candidate in _LABEL_KEYS:
            if isinstance(value.get(candidate), str) and value[candidate].strip():
                return value[candidate].strip()[:200]
    return key


def _leaves(
    value: Any, dotted: tuple[str, ...], headings: tuple[str, ...]
) -> Iterator[tuple[str, str, tuple]]:
    if isinstance(value, dict):
        for key, child in value.items():
            child_headings = (
                headings + (_label(str(key), child),) if isinstance(child, (dict, list)) else headings
            )
            yield from _leaves(child, dotted + (str(key),), child_headings)
    elif isinstance(value, list):
        for index, child in enumerate(value):
            key = f"{dotted[-1] if dotted else ''}[{index}]"
            child_headings = headings + (_label(key, child),) if isinstance(child, dict) else headings
            yield from _leaves(child, dotted + (str(index),), child_headings)
    elif isinstance(value, str) and value.strip():
        yield ".".join(dotted), value.strip(), headings


def _blocks(value: Any, fields: Sequence[str]) -> list[Block]:
    """One block per object: its selected string fields as ``key: value`` lines."""
    blocks: list[Block] = []
    lines: list[str] = []
    current: tuple[str, ...] | None = None
    for dotted, text, headings in _leaves(value, (), ()):
        if fields and not any(fnmatchcase(dotted, pattern) for pattern in fields):
            continue
        if headings != current and lines:
            blocks.append(Block("\n".join(lines), current))
            lines = []
        current = headings
        key = dotted.rsplit(".", 1)[-1]
        lines.append(text if key.isdigit() else f"{key}: {text}")
    if lines:
        blocks.append(Block("\n".join(lines), current))
    return blocks


def _title(value: Any, path: Path) -> str:
    if isinstance(value, dict):
        for key in _LABEL_KEYS[:2]:
            if isinstance(value.get(key), str) and value[key].strip():
                return value[key].strip()
    return path.stem


def load_json(path: Path, data: bytes, fields: Sequence[str] = ()) -> LoadedDocument:
    text = decode_text(data, path)
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LoaderError(
            f"{path.name}: invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from exc
    blocks = _blocks(value, fields)
    if not blocks:
        raise LoaderError(f"{path.name}: no string fields{' match ' + ', '.join(fields) if fields else ''}")
    return LoadedDocument(title=_title(value, path), mime_type="application/json", blocks=blocks)


def load_jsonl(path: Path, data: bytes, fields: Sequence[str] = ()) -> LoadedDocument:
    text = decode_text(data, path)
    blocks: list[Block] = []
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise LoaderError(f"{path.name}: line {number} is not valid JSON: {exc.msg}") from exc
        record_label = _label(f"line {number}", record)
        for block in _blocks(record, fields):
            blocks.append(Block(block.text, (record_label,) + block.heading_path))
    if not blocks:
        raise LoaderError(f"{path.name}: no string fields{' match ' + ', '.join(fields) if fields else ''}")
    return LoadedDocument(title=path.stem, mime_type="application/jsonl", blocks=blocks)
