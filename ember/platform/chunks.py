"""Reading stored chunks back as search hits: what a citation points at, and the agent's read tool."""

from __future__ import annotations

from sqlalchemy import select

from ember.platform.db import Database
from ember.platform.errors import NotFoundError
from ember.platform.tables import Chunk, Collection, Document
from ember.retrieval.types import ChunkRecord, Hit, location_of


def read_chunks(db: Database, kind: str, target: int, around: int) -> list[Hit]:
    """A chunk with ``around`` neighbours each side (kind "chunk"), or the first ``2 * around + 1``
    chunks of a document (kind "document"), in order. NotFoundError when the target does not exist."""
    with db.session() as session:
        if kind == "chunk":
            chunk = session.get(Chunk, target)
            if chunk is None:
                raise NotFoundError(f"chunk {target} does not exist")
            document_id, low, high = chunk.document_id, chunk.ordinal - around, chunk.ordinal + around
        else:
            if session.get(Document, target) is None:
                raise NotFoundError(f"document {target} does not exist")
            document_id, low, high = target, 0, 2 * around
        rows = session.execute(
            select(Chunk, Document.title, Collection.name)
            .join(Document, Chunk.document_id == Document.id)
            .join(Collection, Document.collection_id == Collection.id)
            .where(Chunk.document_id == document_id, Chunk.ordinal.between(low, high))
            .order_by(Chunk.ordinal)
        ).all()
        hits = []
        for chunk, title, collection in rows:
            record = ChunkRecord(
                chunk.id, chunk.document_id, chunk.text, title, " > ".join(chunk.heading_path), chunk.page
            )
            hits.append(
                Hit(chunk.id, chunk.document_id, title, location_of(record), chunk.text, 0.0, collection)
            )
        return hits
