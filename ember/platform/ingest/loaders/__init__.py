"""Loader registry: file extension → loader."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from ember.platform.ingest.document import LoadedDocument, UnsupportedFile
from ember.platform.ingest.loaders.html import load_html
from ember.platform.ingest.loaders.office import load_docx, load_pdf
from ember.platform.ingest.loaders.structured import load_json, load_jsonl
from ember.platform.ingest.loaders.text import load_markdown, load_text

Loader = Callable[[Path, bytes], LoadedDocument]

_BY_SUFFIX: dict[str, Loader] = {
    ".txt": load_text,
    ".text": load_text,
    ".rst": load_text,
    ".md": load_markdown,
    ".markdown": load_markdown,
    ".html": load_html,
    ".htm": load_html,
    ".pdf": load_pdf,
    ".docx": load_docx,
}

SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX) | {".json", ".jsonl", ".ndjson"}


def loader_for(path: Path, json_fields: Sequence[str] = ()) -> Loader:
    suffix = path.suffix.lower()
    if suffix == ".json":
        return partial(load_json, fields=json_fields)
    if suffix in (".jsonl", ".ndjson"):
        return partial(load_jsonl, fields=json_fields)
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    raise UnsupportedFile(f"{path.name}: no loader for '{suffix or 'no extension'}' files")
