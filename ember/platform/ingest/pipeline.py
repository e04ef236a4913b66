"""The ingest run: each file loaded, chunked and committed in its own transaction.

Safety rests on two rules. A file's document row and all of its chunks change in one transaction, so
a crash (even kill -9) leaves every document either in its old or its new state, and the next run
redoes whatever did not commit. A file that fails is recorded with its reason and changes nothing that
is already stored.
"""

from __future__ import annotations

import hashlib
import os
import socket
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from sqlalchemy import delete, insert, select

from ember.platform.db import Database
from ember.platform.ingest.chunker import Chunker
from ember.platform.ingest.document import LoaderError, UnsupportedFile
from ember.platform.ingest.loaders import loader_for
from ember.platform.ingest.sources import SourceSet
from ember.platform.ingest.tokens import TokenCounter
from ember.platform.models import Chunk, Collection, Document, IngestFileResult, IngestJob, utcnow

OUTCOMES = ("added", "updated", "unchanged", "removed", "failed", "skipped")


@dataclass(frozen=True)
class ChunkChange:
    """What one committed document changed: the index hook's input."""

    collection_id: int
    collection_name: str
    document_id: int
    added_chunk_ids: list[int]
    removed_chunk_ids: list[int]


class IngestHook(Protocol):
    """Called after SQL commits; SQL stays the source of truth, so indexes can always be rebuilt."""

    def on_chunks_committed(self, change: ChunkChange) -> None: ...

    def on_run_finished(self, collection_name: str) -> None: ...


@dataclass(frozen=True)
class IngestOptions:
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    delete_missing: bool = True
    json_fields: Sequence[str] = ()


@dataclass(frozen=True)
class FileResult:
    source_uri: str
    outcome: str
    reason: str = ""
    chunks: int = 0
    size_bytes: int = 0


@dataclass
class IngestReport:
    job_id: int
    collection: str
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.outcome for r in self.results)
        return {outcome: counted.get(outcome, 0) for outcome in OUTCOMES}

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.outcome == "failed"]

    @property
    def chunks_written(self) -> int:
        return sum(r.chunks for r in self.results if r.outcome in ("added", "updated"))

    @property
    def bytes_read(self) -> int:
        return sum(r.size_bytes for r in self.results if r.outcome in ("added", "updated", "unchanged"))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class IngestRun:
    def __init__(
        self,
        db: Database,
        counter: TokenCounter,
        max_file_bytes: int,
        default_chunk_size: int,
        default_overlap: int,
        hook: IngestHook | None = None,
    ) -> None:
        self.db = db
        self.counter = counter
        self.max_file_bytes = max_file_bytes
        self.default_chunk_size = default_chunk_size
        self.default_overlap = default_overlap
        self.hook = hook

    def run(
        self,
        collection_name: str,
        sources: SourceSet,
        options: IngestOptions,
        on_file: Callable[[FileResult], None] | None = None,
    ) -> IngestReport:
        started = time.perf_counter()
        collection_id, chunker = self._prepare_collection(collection_name, options)
        job_id = self._start_job(collection_id, sources, options)
        report = IngestReport(job_id=job_id, collection=collection_name)

        def record(result: FileResult) -> None:
            report.results.append(result)
            if on_file:
                on_file(result)

        seen: set[str] = set()
        for path in sources.files:
            source_uri = path.as_uri()
            seen.add(source_uri)
            record(self._ingest_file(collection_id, collection_name, path, chunker, options))
        if options.delete_missing:
            for result in self._remove_missing(collection_id, collection_name, sources, seen):
                record(result)
        if self.hook:
            self.hook.on_run_finished(collection_name)
        report.seconds = time.perf_counter() - started
        self._finish_job(job_id, report)
        return report

    def _prepare_collection(self, name: str, options: IngestOptions) -> tuple[int, Chunker]:
        with self.db.session() as session:
            collection = session.scalar(select(Collection).where(Collection.name == name))
            if collection is None:
                collection = Collection(name=name)
                session.add(collection)
            # Flags given on a run become the collection's own setting, so later runs keep them.
            if options.chunk_size is not None:
                collection.chunk_size = options.chunk_size
            if options.chunk_overlap is not None:
                collection.chunk_overlap = options.chunk_overlap
            size = collection.chunk_size or self.default_chunk_size
            overlap = (
                collection.chunk_overlap if collection.chunk_overlap is not None else self.default_overlap
            )
            chunker = Chunker(self.counter, size, overlap)  # validates before anything is stored
            session.flush()
            return collection.id, chunker

    def _start_job(self, collection_id: int, sources: SourceSet, options: IngestOptions) -> int:
        host = socket.gethostname()
        with self.db.session() as session:
            running = session.scalars(
                select(IngestJob).where(
                    IngestJob.collection_id == collection_id, IngestJob.status == "running"
                )
            )
            for job in running:
                owner = job.options.get("owner", {})
                if owner.get("host") != host or not _pid_alive(int(owner.get("pid", 0))):
                    job.status, job.finished_at = "interrupted", utcnow()
            job = IngestJob(
                collection_id=collection_id,
                source=str(sources.root or (sources.files[0] if sources.files else "")),
                options={
                    "chunk_size": options.chunk_size,
                    "chunk_overlap": options.chunk_overlap,
                    "delete_missing": options.delete_missing,
                    "pattern": sources.pattern,
                    "owner": {"host": host, "pid": os.getpid()},
                },
            )
            session.add(job)
            session.flush()
            return job.id

    def _finish_job(self, job_id: int, report: IngestReport) -> None:
        with self.db.session() as session:
            job = session.get(IngestJob, job_id)
            job.status = "completed"
            job.finished_at = utcnow()
            job.counts = report.counts | {
                "chunks": report.chunks_written,
                "seconds": round(report.seconds, 3),
            }
            session.add_all(
                IngestFileResult(
                    job_id=job_id,
                    source_uri=r.source_uri,
                    outcome=r.outcome,
                    reason=r.reason,
                    chunks=r.chunks,
                    size_bytes=r.size_bytes,
                )
                for r in report.results
            )

    def _ingest_file(
        self, collection_id: int, collection_name: str, path: Path, chunker: Chunker, options: IngestOptions
    ) -> FileResult:
        source_uri = path.as_uri()
        try:
            loader = loader_for(path, options.json_fields)
            size = path.stat().st_size
            if size > self.max_file_bytes:
                raise LoaderError(
                    f"{path.name}: {size / 2**20:.1f} MB is over the size limit of "
                    f"{self.max_file_bytes / 2**20:.1f} MB (EMBER_MAX_FILE_MB)"
                )
            data = path.read_bytes()
            content_hash = hashlib.sha256(data).hexdigest()
            with self.db.session() as session:
                existing = session.scalar(
                    select(Document).where(
                        Document.collection_id == collection_id, Document.source_uri == source_uri
                    )
                )
                if (
                    existing
                    and existing.content_hash == content_hash
                    and existing.chunker == chunker.signature
                ):
                    return FileResult(source_uri, "unchanged", size_bytes=size)
            loaded = loader(path, data)
            text, drafts = chunker.chunk(loaded.blocks)
        except UnsupportedFile as exc:
            return FileResult(source_uri, "skipped", str(exc))
        except (LoaderError, OSError) as exc:
            return FileResult(source_uri, "failed", str(exc))
        except Exception as exc:  # a loader bug on one odd file must not stop the others
            return FileResult(source_uri, "failed", f"{path.name}: unexpected {type(exc).__name__}: {exc}")

        with self.db.session() as session:
            document = session.scalar(
                select(Document).where(
                    Document.collection_id == collection_id, Document.source_uri == source_uri
                )
            )
            outcome = "updated" if document else "added"
            if document is None:
                document = Document(collection_id=collection_id, source_uri=source_uri)
                session.add(document)
            document.title = loaded.title[:1000]
            document.mime_type = loaded.mime_type
            document.content_hash = content_hash
            document.size_bytes = size
            document.chunker = chunker.signature
            document.meta = loaded.metadata | {"characters": len(text)}
            document.status = "ready"
            session.flush()
            removed = list(session.scalars(select(Chunk.id).where(Chunk.document_id == document.id)))
            session.execute(delete(Chunk).where(Chunk.document_id == document.id))
            rows = [
                {
                    "document_id": document.id,
                    "ordinal": ordinal,
                    "text": draft.text,
                    "token_count": draft.token_count,
                    "char_start": draft.char_start,
                    "char_end": draft.char_end,
                    "page": draft.page,
                    "heading_path": list(draft.heading_path),
                }
                for ordinal, draft in enumerate(drafts)
            ]
            added = list(
                session.scalars(insert(Chunk).returning(Chunk.id, sort_by_parameter_order=True), rows)
            )
            document_id = document.id
        if self.hook:
            self.hook.on_chunks_committed(
                ChunkChange(collection_id, collection_name, document_id, added, removed)
            )
        return FileResult(source_uri, outcome, chunks=len(drafts), size_bytes=size)

    def _remove_missing(
        self, collection_id: int, collection_name: str, sources: SourceSet, seen: set[str]
    ) -> list[FileResult]:
        results = []
        with self.db.session() as session:
            candidates = session.execute(
                select(Document.id, Document.source_uri).where(Document.collection_id == collection_id)
            ).all()
        for document_id, source_uri in candidates:
            if source_uri in seen or not sources.in_scope(source_uri):
                continue
            with self.db.session() as session:
                removed = list(session.scalars(select(Chunk.id).where(Chunk.document_id == document_id)))
                session.execute(delete(Chunk).where(Chunk.document_id == document_id))
                session.execute(delete(Document).where(Document.id == document_id))
            if self.hook:
                self.hook.on_chunks_committed(
                    ChunkChange(collection_id, collection_name, document_id, [], removed)
                )
            results.append(FileResult(source_uri, "removed", chunks=len(removed)))
        return results
