"""Loader registry: file extension → loader; ``.gz`` by the extension inside; unknown types by content."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from ember.platform.ingest.document import LoadedDocument, UnsupportedFile
from ember.platform.ingest.loaders.compressed import load_gzip
from ember.platform.ingest.loaders.html import load_html
from ember.platform.ingest.loaders.office import load_docx, load_pdf
from ember.platform.ingest.loaders.sniff import load_sniffed_text
from ember.platform.ingest.loaders.structured import load_json, load_jsonl
from ember.platform.ingest.loaders.text import load_markdown, load_text

Loader = Callable[[Path, bytes], LoadedDocument]

DEFAULT_MAX_BYTES = 200 * 2**20  # the EMBER_MAX_FILE_MB default, for callers without settings

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

# Skipped by name, without reading them: common binary types, which can be far over the size limit.
_BINARY_SUFFIXES = frozenset(
    ".exe .dll .so .dylib .o .a .lib .bin .class .pyc .jar .whl .deb .rpm .iso .dmg .img "
    ".zip .tar .tgz .bz2 .xz .zst .7z .rar "
    ".png .jpg .jpeg .gif .bmp .ico .webp .tif .tiff .svg .psd "
    ".mp3 .wav .ogg .flac .m4a .mp4 .mkv .avi .mov .webm "
    ".ttf .otf .woff .woff2 .db .sqlite .doc .xls .xlsx .ppt .pptx .odt".split()
)

SUPPORTED_SUFFIXES = frozenset(_BY_SUFFIX) | {".json", ".jsonl", ".ndjson", ".gz"}


def loader_for(path: Path, json_fields: Sequence[str] = (), max_bytes: int = DEFAULT_MAX_BYTES) -> Loader:
    """The loader for ``path``; ``max_bytes`` limits what a compressed file may decompress to."""
    suffix = path.suffix.lower()
    if suffix == ".gz":
        try:  # chosen before reading, so that "x.tar.gz" is skipped without decompressing it
            inner = loader_for(path.with_suffix(""), json_fields, max_bytes)
        except UnsupportedFile as exc:
            raise UnsupportedFile(f"{path.name}: {exc}") from exc
        return partial(load_gzip, inner_loader=inner, max_bytes=max_bytes)
    if suffix == ".json":
        return partial(load_json, fields=json_fields)
    if suffix in (".jsonl", ".ndjson"):
        return partial(load_jsonl, fields=json_fields)
    if suffix in _BY_SUFFIX:
        return _BY_SUFFIX[suffix]
    if suffix in _BINARY_SUFFIXES:
        raise UnsupportedFile(f"{path.name}: no loader for '{suffix}' files")
    return load_sniffed_text
