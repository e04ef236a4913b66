"""Reading back an ingest run: its status, counts and per-file outcomes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select

from ember.platform.db import Database
from ember.platform.errors import NotFoundError
from ember.platform.tables import Collection, IngestFileResult, IngestJob


@dataclass(frozen=True)
class IngestJobStatus:
    id: int
    collection: str
    source: str
    status: str  # running | completed | interrupted
    counts: dict
    started_at: datetime
    finished_at: datetime | None
    files: list[dict] = field(default_factory=list)


def get_ingest_job(db: Database, job_id: int) -> IngestJobStatus:
    with db.session() as session:
        job = session.get(IngestJob, job_id)
        if job is None:
            raise NotFoundError(f"ingest job {job_id} does not exist")
        collection = session.scalar(select(Collection.name).where(Collection.id == job.collection_id))
        files = session.scalars(
            select(IngestFileResult).where(IngestFileResult.job_id == job.id).order_by(IngestFileResult.id)
        )
        return IngestJobStatus(
            id=job.id,
            collection=collection or "",
            source=job.source,
            status=job.status,
            counts=dict(job.counts or {}),
            started_at=job.started_at,
            finished_at=job.finished_at,
            files=[
                {"source": f.source_uri, "outcome": f.outcome, "reason": f.reason, "chunks": f.chunks}
                for f in files
            ],
        )
