"""Glue between the SQL catalogue (the source of truth) and the per-collection retrieval indexes.

The index follows SQL (docs/architecture.md, "Index consistency"): every change to a collection's
chunks bumps ``collections.content_revision`` in the same transaction, and every saved index generation
records the revision it reflects. A command that writes a collection (ingest, repair, rebuild) holds
the collection's writer lock and first reconciles an index that is behind; a search that finds one
behind reconciles it when no writer holds the lock. Reconciling is an exact set difference of chunk
ids (missing ones embedded and added, stale ones dropped), so whatever a crash lost, the next command
puts back.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from sqlalchemy import select

from ember.platform.db import Database
from ember.platform.errors import NotFoundError
from ember.platform.ingest.pipeline import ChunkChange
from ember.platform.tables import Chunk, Collection, Document
from ember.platform.types import IndexDrift
from ember.retrieval.collection_index import CollectionIndex
from ember.retrieval.store import IndexStore
from ember.retrieval.types import ChunkRecord

BATCH = 256


def _select_records():
    return select(
        Chunk.id,
        Chunk.document_id,
        Chunk.text,
        Chunk.page,
        Chunk.heading_path,
        Document.title,
        Document.source_uri,
    ).join(Document, Chunk.document_id == Document.id)


def _to_record(row) -> ChunkRecord:  # noqa: ANN001 - a SQLAlchemy Row
    chunk_id, document_id, text, page, heading_path, title, source = row
    return ChunkRecord(chunk_id, document_id, text, title or "", " > ".join(heading_path or []), page, source)


def chunk_records(db: Database, chunk_ids: Iterable[int]) -> list[ChunkRecord]:
    ids = list(chunk_ids)
    records = []
    with db.session() as session:
        for start in range(0, len(ids), 500):
            rows = session.execute(_select_records().where(Chunk.id.in_(ids[start : start + 500])))
            records.extend(_to_record(row) for row in rows)
    return records


def collection_chunk_ids(db: Database, collection: str) -> set[int]:
    with db.session() as session:
        collection_id = session.scalar(select(Collection.id).where(Collection.name == collection))
        if collection_id is None:
            raise NotFoundError(f"collection '{collection}' does not exist")
        rows = session.scalars(
            select(Chunk.id)
            .join(Document, Chunk.document_id == Document.id)
            .where(Document.collection_id == collection_id)
        )
        return set(rows)


def _batches(db: Database, ids: Iterable[int]) -> Iterator[list[ChunkRecord]]:
    ordered = sorted(ids)
    for start in range(0, len(ordered), BATCH):
        yield chunk_records(db, ordered[start : start + BATCH])


@dataclass
class _Run:
    """One ingest run's writer copy of the index and the committed changes not yet embedded."""

    index: CollectionIndex
    on_indexed: Callable[[int], None] | None
    added: list[int] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)


class IndexSync:
    """The ingest hook (``ember.platform.ingest.pipeline.IngestHook``) that keeps indexes level with SQL.

    The caller holds the collection's writer lock for the whole run (``EmberService.ingest``). A run
    starts by repairing what an interrupted run left, embeds committed chunks in batches across files,
    and ends with one saved generation stamped with SQL's revision."""

    def __init__(self, db: Database, store: IndexStore, batch_chunks: int = BATCH) -> None:
        self.db, self.store = db, store
        self.batch_chunks = batch_chunks
        self._runs: dict[str, _Run] = {}  # by collection: API threads ingest several at once

    def on_run_started(
        self, collection_name: str, on_indexed: Callable[[int], None] | None = None
    ) -> IndexDrift | None:
        index = self.store.open_for_write(collection_name)
        repaired = None
        if index.content_revision != content_revision(self.db, collection_name):
            drift, revision = reconcile(self.db, index, collection_name, on_batch=on_indexed)
            _save_if_changed(index, revision)  # the repair holds even if this run dies
            repaired = None if drift.clean else drift
        self._runs[collection_name] = _Run(index, on_indexed)
        return repaired

    def on_chunks_committed(self, change: ChunkChange) -> None:
        run = self._runs[change.collection_name]
        run.added.extend(change.added_chunk_ids)
        run.removed.extend(change.removed_chunk_ids)
        if len(run.added) >= self.batch_chunks:
            self._flush(run)

    def on_run_finished(self, collection_name: str) -> None:
        run = self._runs.pop(collection_name)
        self._flush(run)
        _, revision = reconcile(self.db, run.index, collection_name, on_batch=run.on_indexed)
        _save_if_changed(run.index, revision)

    def _flush(self, run: _Run) -> None:
        # Deletes first: SQLite may give a re-chunked document's new chunks the ids of its old ones.
        run.index.delete(run.removed)
        records = chunk_records(self.db, run.added)
        run.index.upsert(records)
        run.added, run.removed = [], []
        if run.on_indexed and records:
            run.on_indexed(len(records))


def content_revision(db: Database, collection: str) -> int:
    """How many committed changes the collection's chunks have had (bumped with each change)."""
    with db.session() as session:
        revision = session.scalar(select(Collection.content_revision).where(Collection.name == collection))
    if revision is None:
        raise NotFoundError(f"collection '{collection}' does not exist")
    return revision


def reconcile(
    db: Database,
    index: CollectionIndex,
    collection: str,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> tuple[IndexDrift, int]:
    """Make a writer's index copy hold exactly SQL's chunks; returns the drift it fixed and the revision
    the copy now reflects. The revision is read before the chunk ids, so the copy is at least that new."""
    revision = content_revision(db, collection)
    in_sql = collection_chunk_ids(db, collection)
    in_index = index.chunk_ids()
    drift = IndexDrift(collection, len(in_index), frozenset(in_sql - in_index), frozenset(in_index - in_sql))
    index.delete(drift.stale)
    if on_start:
        on_start(len(drift.missing))
    for batch in _batches(db, drift.missing):
        index.upsert(batch)
        if on_batch:
            on_batch(len(batch))
    return drift, revision


def _save_if_changed(index: CollectionIndex, revision: int) -> None:
    if index.dirty or index.content_revision != revision:
        index.save(revision)


def catch_up(db: Database, store: IndexStore, collection: str) -> IndexDrift | None:
    """For searches: reconcile the index if it is behind SQL and no writer is at work (a writer leaves
    it level when it finishes); returns the drift fixed, or None when nothing was done."""
    if store.get(collection).content_revision == content_revision(db, collection):
        return None
    lock = store.writer(collection)
    if not lock.acquire(blocking=False):
        return None
    try:
        index = store.open_for_write(collection)
        drift, revision = reconcile(db, index, collection)
        _save_if_changed(index, revision)
        return drift
    finally:
        lock.release()


def check(db: Database, store: IndexStore, collection: str) -> IndexDrift:
    in_sql = collection_chunk_ids(db, collection)
    in_index = store.get(collection).chunk_ids()
    return IndexDrift(
        collection, len(in_index), missing=frozenset(in_sql - in_index), stale=frozenset(in_index - in_sql)
    )


def repair(
    db: Database, store: IndexStore, collection: str, on_batch: Callable[[int], None] | None = None
) -> IndexDrift:
    """Under the writer lock, index what SQL has and the index lacks, and drop what SQL no longer has."""
    with store.writer(collection):
        index = store.open_for_write(collection)
        drift, revision = reconcile(db, index, collection, on_batch=on_batch)
        _save_if_changed(index, revision)
    return drift


def rebuild(
    db: Database,
    store: IndexStore,
    collection: str,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> CollectionIndex:
    """Build the index again from SQL alone, with the currently configured embedding model. Searches
    keep the old generation until the new one is saved."""
    content_revision(db, collection)  # NotFoundError before any lock file is made
    with store.writer(collection):
        index = store.open_for_write(collection, start_empty=True)
        _, revision = reconcile(db, index, collection, on_start, on_batch)
        index.save(revision)
    return index


def orphaned_indexes(db: Database, store: IndexStore) -> list[str]:
    """Names of the index directories whose collection no longer exists in SQL."""
    if not store.root.is_dir():
        return []
    with db.session() as session:
        names = set(session.scalars(select(Collection.name)))
    return [
        p.name
        for p in sorted(store.root.iterdir())
        if p.is_dir() and not p.name.startswith(".") and p.name not in names  # .locks is the store's
    ]
