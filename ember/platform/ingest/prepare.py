"""Load and chunk one file: the CPU-heavy half of ingestion, run in worker processes.

Kept free of database code so that workers start light. A result is either a ``PreparedFile`` to
store or the ``FileResult`` that says why the file was skipped or failed.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ember.platform.ingest.chunker import ChunkDraft, Chunker
from ember.platform.ingest.document import LoaderError, UnsupportedFile
from ember.platform.ingest.loaders import loader_for
from ember.platform.types import FileResult


@dataclass(frozen=True)
class PreparedFile:
    source_uri: str
    content_hash: str
    size_bytes: int
    title: str
    mime_type: str
    drafts: list[ChunkDraft]
    metadata: dict = field(default_factory=dict)


def prepare_file(
    path: Path, chunker: Chunker, json_fields: Sequence[str], max_bytes: int
) -> PreparedFile | FileResult:
    """``max_bytes`` limits what a compressed file may decompress to (EMBER_MAX_FILE_MB)."""
    source_uri = path.as_uri()
    try:
        data = path.read_bytes()
        loaded = loader_for(path, json_fields, max_bytes)(path, data)
        text, drafts = chunker.chunk(loaded.blocks)
    except UnsupportedFile as exc:
        return FileResult(source_uri, "skipped", str(exc))
    except (LoaderError, OSError) as exc:
        return FileResult(source_uri, "failed", str(exc))
    except Exception as exc:  # a loader bug on one odd file must not stop the others
        return FileResult(source_uri, "failed", f"{path.name}: unexpected {type(exc).__name__}: {exc}")
    return PreparedFile(
        source_uri=source_uri,
        content_hash=hashlib.sha256(data).hexdigest(),
        size_bytes=len(data),
        title=loaded.title[:1000],
        mime_type=loaded.mime_type,
        drafts=drafts,
        metadata=loaded.metadata | {"characters": len(text)},
    )


_worker_chunker: Chunker | None = None


def _exit_with_parent(parent: int) -> None:
    # A pool worker blocks on its queue's lock, which never wakes if the parent is killed (kill -9).
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(0)


def init_worker(chunker: Chunker, parent: int) -> None:
    # The parent's pid comes from the parent: read here, after a slow spawn, it may already be init's.
    global _worker_chunker
    _worker_chunker = chunker
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True).start()


def prepare_in_worker(path: Path, json_fields: Sequence[str], max_bytes: int) -> PreparedFile | FileResult:
    return prepare_file(path, _worker_chunker, json_fields, max_bytes)
