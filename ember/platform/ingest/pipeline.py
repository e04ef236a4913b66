"""The ingest run: each file loaded, chunked and committed in its own transaction.

Safety rests on two rules. A file's document row and all of its chunks change in one transaction, so
a crash (even kill -9) leaves every document either in its old or its new state, and the next run
redoes whatever did not commit. A file that fails is recorded with its reason and changes nothing that
is already stored. Each such transaction also bumps the collection's content revision, which tells the
index hook whether the search index has caught up (docs/architecture.md, "Index consistency").
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import socket
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlalchemy import bindparam, delete, insert, select, update

from ember.platform.db import Database
from ember.platform.ingest.chunker import Chunker
from ember.platform.ingest.document import UnsupportedFile
from ember.platform.ingest.loaders import loader_for
from ember.platform.ingest.prepare import (
    PreparedFile,
    init_worker,
    prepare_file,
    prepare_in_worker,
)
from ember.platform.ingest.sources import SourceSet
from ember.platform.ingest.tokens import TokenCounter
from ember.platform.ingest_jobs import file_result_rows
from ember.platform.tables import Chunk, Collection, Document, IngestJob, utcnow
from ember.platform.types import FileResult, IndexDrift, IngestReport

# Built once: composing SQL expressions per file is a measurable share of the store step.
_DOCUMENT_BY_URI = select(Document).where(
    Document.collection_id == bindparam("c"), Document.source_uri == bindparam("u")
)
_CHUNK_IDS = select(Chunk.id).where(Chunk.document_id == bindparam("d")).order_by(Chunk.ordinal)
_DELETE_CHUNKS = delete(Chunk).where(Chunk.document_id == bindparam("d"))
_BUMP_REVISION = (
    update(Collection)
    .where(Collection.id == bindparam("c"))
    .values(content_revision=Collection.content_revision + 1)
)


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

    def on_run_started(
        self, collection_name: str, on_indexed: Callable[[int], None] | None
    ) -> IndexDrift | None:
        """Before any file: returns the drift left by an interrupted run, once repaired (else None)."""

    def on_chunks_committed(self, change: ChunkChange) -> None: ...

    def on_run_finished(self, collection_name: str) -> None: ...


@dataclass(frozen=True)
class IngestOptions:
    chunk_size: int | None = None
    chunk_overlap: int | None = None
    delete_missing: bool = True
    json_fields: Sequence[str] = ()


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
        workers: int = 1,
    ) -> None:
        self.workers = workers
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
        on_indexed: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """on_file gets each file's result as it commits; on_indexed the number of chunks each batch
        added to the search index (the hook embeds in batches across files)."""
        started = time.perf_counter()
        collection_id, chunker = self._prepare_collection(collection_name, options)
        job_id = self._start_job(collection_id, sources, options)
        report = IngestReport(job_id=job_id, collection=collection_name)
        if self.hook:
            report.index_repair = self.hook.on_run_started(collection_name, on_indexed)

        def record(result: FileResult) -> None:
            report.results.append(result)
            if on_file:
                on_file(result)

        known = self._known_documents(collection_id)
        todo: list[Path] = []
        for path in sources.files:
            planned = self._plan(path, known, chunker.signature)
            if planned is None:
                todo.append(path)
            else:
                record(planned)
        for prepared in self._prepare_all(todo, chunker, options):
            if isinstance(prepared, FileResult):
                record(prepared)
            else:
                record(self._store(collection_id, collection_name, prepared, chunker.signature))
        seen = {path.as_uri() for path in sources.files}
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
            session.add_all(file_result_rows(job_id, report.results))

    def _known_documents(self, collection_id: int) -> dict[str, tuple[str, str]]:
        with self.db.session() as session:
            rows = session.execute(
                select(Document.source_uri, Document.content_hash, Document.chunker).where(
                    Document.collection_id == collection_id
                )
            )
            return {uri: (content_hash, signature) for uri, content_hash, signature in rows}

    def _plan(self, path: Path, known: dict[str, tuple[str, str]], signature: str) -> FileResult | None:
        """The result for a file that needs no loading (skipped, too big, unchanged), else None."""
        source_uri = path.as_uri()
        try:
            loader_for(path)
            size = path.stat().st_size
            if size > self.max_file_bytes:
                return FileResult(
                    source_uri,
                    "failed",
                    f"{path.name}: {size / 2**20:.1f} MB is over the size limit of "
                    f"{self.max_file_bytes / 2**20:.1f} MB (EMBER_MAX_FILE_MB)",
                )
            if source_uri in known:
                content_hash = hashlib.sha256(path.read_bytes()).hexdigest()
                if known[source_uri] == (content_hash, signature):
                    return FileResult(source_uri, "unchanged", size_bytes=size)
        except UnsupportedFile as exc:
            return FileResult(source_uri, "skipped", str(exc))
        except OSError as exc:
            return FileResult(source_uri, "failed", f"{path.name}: {exc.strerror or exc}")
        return None

    def _prepare_all(
        self, paths: list[Path], chunker: Chunker, options: IngestOptions
    ) -> Iterator[PreparedFile | FileResult]:
        """Load and chunk in worker processes when there is enough work, yielding in input order."""
        if self.workers <= 1 or len(paths) < 2 * self.workers:
            for path in paths:
                yield prepare_file(path, chunker, options.json_fields, self.max_file_bytes)
            return
        # spawn, not fork: the parent may hold torch or database threads
        context = multiprocessing.get_context("spawn")
        done = 0
        try:
            with ProcessPoolExecutor(
                self.workers, context, initializer=init_worker, initargs=(chunker, os.getpid())
            ) as pool:
                window: deque[Future] = deque()
                for path in paths:
                    future = pool.submit(prepare_in_worker, path, options.json_fields, self.max_file_bytes)
                    window.append(future)
                    if len(window) >= 4 * self.workers:
                        result = window.popleft().result()
                        done += 1
                        yield result
                while window:
                    result = window.popleft().result()
                    done += 1
                    yield result
        except BrokenProcessPool:  # workers could not start or died: finish in this process
            for path in paths[done:]:
                yield prepare_file(path, chunker, options.json_fields, self.max_file_bytes)

    def _store(
        self, collection_id: int, collection_name: str, prepared: PreparedFile, signature: str
    ) -> FileResult:
        """Replace the document's row and chunks in one transaction, then tell the hook."""
        with self.db.session() as session:
            document = session.scalar(_DOCUMENT_BY_URI, {"c": collection_id, "u": prepared.source_uri})
            outcome = "updated" if document else "added"
            if document is None:
                document = Document(collection_id=collection_id, source_uri=prepared.source_uri)
                session.add(document)
            elif document.content_hash == prepared.content_hash and document.chunker == signature:
                return FileResult(prepared.source_uri, "unchanged", size_bytes=prepared.size_bytes)
            document.title = prepared.title
            document.mime_type = prepared.mime_type
            document.content_hash = prepared.content_hash
            document.size_bytes = prepared.size_bytes
            document.chunker = signature
            document.meta = prepared.metadata
            document.status = "ready"
            session.flush()
            removed: list[int] = []
            if outcome == "updated":
                removed = list(session.scalars(_CHUNK_IDS, {"d": document.id}))
                session.execute(_DELETE_CHUNKS, {"d": document.id})
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
                for ordinal, draft in enumerate(prepared.drafts)
            ]
            if rows:  # one executemany; RETURNING with ordering would insert row by row on SQLite
                session.execute(insert(Chunk), rows)
            added = list(session.scalars(_CHUNK_IDS, {"d": document.id}))
            session.execute(_BUMP_REVISION, {"c": collection_id})
            document_id = document.id
        if self.hook:
            self.hook.on_chunks_committed(
                ChunkChange(collection_id, collection_name, document_id, added, removed)
            )
        return FileResult(
            prepared.source_uri, outcome, chunks=len(prepared.drafts), size_bytes=prepared.size_bytes
        )

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
                session.execute(_BUMP_REVISION, {"c": collection_id})
            if self.hook:
                self.hook.on_chunks_committed(
                    ChunkChange(collection_id, collection_name, document_id, [], removed)
                )
            results.append(FileResult(source_uri, "removed", chunks=len(removed)))
        return results
