"""``.gz`` files: decompressed under a size limit, then loaded by the extension inside the name."""

from __future__ import annotations

import gzip
import io
import zlib
from collections.abc import Callable
from pathlib import Path

from ember.platform.ingest.document import LoadedDocument, LoaderError, UnsupportedFile


def gunzip(path: Path, data: bytes, max_bytes: int) -> bytes:
    """The decompressed bytes; a bad archive, or one that inflates past ``max_bytes``, fails the file."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as archive:
            # read one byte past the limit: a gzip bomb stops here instead of filling memory
            content = archive.read(max_bytes + 1)
    except (OSError, EOFError, zlib.error) as exc:  # BadGzipFile is an OSError; EOFError: truncated
        raise LoaderError(f"{path.name}: not a valid gzip archive ({exc})") from exc
    if len(content) > max_bytes:
        raise LoaderError(
            f"{path.name}: over the size limit of {max_bytes / 2**20:.1f} MB once decompressed "
            "(EMBER_MAX_FILE_MB)"
        )
    return content


def load_gzip(
    path: Path, data: bytes, inner_loader: Callable[[Path, bytes], LoadedDocument], max_bytes: int
) -> LoadedDocument:
    """``notes.md.gz`` loads as ``notes.md``, ``changelog.Debian.gz`` as ``changelog.Debian``."""
    content = gunzip(path, data, max_bytes)
    try:
        loaded = inner_loader(path.with_suffix(""), content)
    except (LoaderError, UnsupportedFile) as exc:
        raise type(exc)(f"{path.name}: {exc}") from exc
    loaded.metadata["compression"] = "gzip"
    return loaded
