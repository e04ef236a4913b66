"""Glue between the SQL catalogue (the source of truth) and the per-collection retrieval indexes.

``IndexSync`` is the ingest hook: after each document's chunks commit it removes the old chunk ids
and embeds and adds the new ones; at the end of a run it saves the touched indexes. A crash between
the SQL commit and the save leaves drift that ``check`` finds and ``repair`` fixes; ``rebuild``
re-creates a collection's index from SQL alone.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

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


class IndexSync:
    """The ingest hook (``ember.platform.ingest.pipeline.IngestHook``) that keeps indexes in step with SQL."""

    def __init__(self, db: Database, store: IndexStore) -> None:
        self.db, self.store = db, store
        self._dirty: set[str] = set()

    def on_chunks_committed(self, change: ChunkChange) -> None:
        index = self.store.get(change.collection_name)
        index.delete(change.removed_chunk_ids)
        if change.added_chunk_ids:
            index.upsert(chunk_records(self.db, change.added_chunk_ids))
        if change.added_chunk_ids or change.removed_chunk_ids:
            self._dirty.add(change.collection_name)

    def on_run_finished(self, collection_name: str) -> None:
        if collection_name in self._dirty:
            self.store.get(collection_name).save()
            self._dirty.discard(collection_name)


def check(db: Database, store: IndexStore, collection: str) -> IndexDrift:
    in_sql = collection_chunk_ids(db, collection)
    in_index = store.get(collection).chunk_ids()
    return IndexDrift(
        collection, len(in_index), missing=frozenset(in_sql - in_index), stale=frozenset(in_index - in_sql)
    )


def repair(
    db: Database, store: IndexStore, drift: IndexDrift, on_batch: Callable[[int], None] | None = None
) -> None:
    index = store.get(drift.collection)
    index.delete(drift.stale)
    for batch in _batches(db, drift.missing):
        index.upsert(batch)
        if on_batch:
            on_batch(len(batch))
    index.save()


def rebuild(
    db: Database,
    store: IndexStore,
    collection: str,
    on_start: Callable[[int], None] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> CollectionIndex:
    """Throw the index away and build it again from SQL, with the currently configured embedding model."""
    ids = collection_chunk_ids(db, collection)
    if on_start:
        on_start(len(ids))
    store.drop(collection)
    index = store.get(collection)
    for batch in _batches(db, ids):
        index.upsert(batch)
        if on_batch:
            on_batch(len(batch))
    index.save()
    return index


def orphaned_indexes(db: Database, store: IndexStore) -> list[str]:
    """Names of the index directories whose collection no longer exists in SQL."""
    if not store.root.is_dir():
        return []
    with db.session() as session:
        names = set(session.scalars(select(Collection.name)))
    return [p.name for p in sorted(store.root.iterdir()) if p.is_dir() and p.name not in names]
