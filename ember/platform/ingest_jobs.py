"""Ingest jobs in SQL: reading back a run (status, counts, per-file outcomes), and the jobs of API
uploads, which live here rather than in one API worker's memory so that any worker can report them."""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ember.platform.db import Database
from ember.platform.errors import NotFoundError
from ember.platform.tables import Collection, IngestFileResult, IngestJob, utcnow
from ember.platform.types import OUTCOMES, FileResult, UploadJobStatus


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


def _owner() -> dict:
    return {"host": socket.gethostname(), "pid": os.getpid()}


def _owner_gone(owner: dict) -> bool:
    """Whether the process that holds a job has stopped (only known for processes on this host)."""
    if owner.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(owner.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _upload_status(session: Session, job: IngestJob) -> UploadJobStatus:
    collection = session.scalar(select(Collection.name).where(Collection.id == job.collection_id))
    problems = session.scalars(
        select(IngestFileResult.reason)
        .where(IngestFileResult.job_id == job.id, IngestFileResult.outcome.in_(("failed", "skipped")))
        .order_by(IngestFileResult.id)
    ).all()
    counts = dict(job.counts or {})
    return UploadJobStatus(
        id=job.id,
        collection=collection or "",
        filename=job.options["upload"],
        status=job.status,
        error=problems[0] if problems else None,
        ingest_job_id=job.options.get("ingest_job_id"),
        counts={k: v for k, v in counts.items() if k != "chunks"},
        chunks_written=counts.get("chunks", 0),
    )


def queue_upload(db: Database, collection_id: int, filename: str, path: Path) -> UploadJobStatus:
    """Record a stored upload's job as queued, held by this process."""
    with db.session() as session:
        job = IngestJob(
            collection_id=collection_id,
            source=str(path),
            status="queued",
            options={"upload": filename, "owner": _owner()},
        )
        session.add(job)
        session.flush()
        return _upload_status(session, job)


def claim_orphaned_uploads(db: Database) -> list[int]:
    """Take over the unfinished upload jobs whose API worker stopped (a crash, or uvicorn restarting a
    worker that missed its health check): they are queued again, held by this process. Each job goes
    to one claimant: the claim is an UPDATE that only matches the row as it was read."""
    claimed = []
    with db.session() as session:
        candidates = session.execute(
            select(IngestJob.id, IngestJob.status, IngestJob.started_at, IngestJob.options).where(
                IngestJob.status.in_(("queued", "running", "interrupted"))
            )
        ).all()
    for job_id, status, started_at, options in candidates:
        if "upload" not in options or not (status == "interrupted" or _owner_gone(options.get("owner", {}))):
            continue
        with db.session() as session:
            taken = session.execute(
                update(IngestJob)
                .where(IngestJob.id == job_id, IngestJob.status == status, IngestJob.started_at == started_at)
                .values(status="queued", started_at=utcnow(), options=options | {"owner": _owner()})
            )
            if taken.rowcount == 1:
                claimed.append(job_id)
    return claimed


def get_upload_job(db: Database, job_id: int) -> UploadJobStatus:
    with db.session() as session:
        job = session.get(IngestJob, job_id)
        if job is None or "upload" not in (job.options or {}):
            raise NotFoundError(f"upload job {job_id} does not exist")
        return _upload_status(session, job)


def start_upload(db: Database, job_id: int) -> tuple[str, Path]:
    """Mark the job running; (collection name, stored file) to ingest."""
    with db.session() as session:
        job = session.get(IngestJob, job_id)
        job.status = "running"
        collection = session.scalar(select(Collection.name).where(Collection.id == job.collection_id))
        return collection, Path(job.source)


def finish_upload(db: Database, job_id: int, ingest_job_id: int | None, results: list[FileResult]) -> None:
    """Record the outcome: failed when the file failed or was skipped, with the ingest run it went into."""
    failed = any(r.outcome in ("failed", "skipped") for r in results)
    with db.session() as session:
        job = session.get(IngestJob, job_id)
        job.status = "failed" if failed else "completed"
        job.finished_at = utcnow()
        job.options = job.options | {"ingest_job_id": ingest_job_id}
        job.counts = {o: sum(r.outcome == o for r in results) for o in OUTCOMES} | {
            "chunks": sum(r.chunks for r in results if r.outcome in ("added", "updated"))
        }
        session.add_all(file_result_rows(job_id, results))


def file_result_rows(job_id: int, results: list[FileResult]) -> list[IngestFileResult]:
    """The per-file rows of an ingest job, one per result."""
    return [
        IngestFileResult(
            job_id=job_id,
            source_uri=r.source_uri,
            outcome=r.outcome,
            reason=r.reason,
            chunks=r.chunks,
            size_bytes=r.size_bytes,
        )
        for r in results
    ]
