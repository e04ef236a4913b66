"""Uploaded documents: saved under $EMBER_HOME/uploads/<collection>/ and ingested one job at a time.

Upload jobs live in this process's memory (ids are unique per server process); the finished job
points at the durable ingest job in SQL.
"""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from ember.platform.errors import EmberError


@dataclass
class UploadJob:
    id: str
    collection: str
    filename: str
    status: str = "queued"  # queued | running | completed | failed
    error: str | None = None
    ingest_job_id: int | None = None
    counts: dict = field(default_factory=dict)
    chunks_written: int = 0

    def as_dict(self) -> dict:
        return {
            "id": self.id,
            "object": "ingest.job",
            "collection": self.collection,
            "filename": self.filename,
            "status": self.status,
            "error": self.error,
            "ingest_job_id": self.ingest_job_id,
            "counts": self.counts,
            "chunks_written": self.chunks_written,
        }


class UploadJobs:
    def __init__(self, service) -> None:  # noqa: ANN001 - EmberService
        self.service = service
        self.jobs: dict[str, UploadJob] = {}
        self._lock = threading.Lock()
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ember-ingest")

    def submit(self, collection: str, filename: str, content: bytes) -> UploadJob:
        path = self.service.store_upload(collection, filename, content)
        job = UploadJob(uuid.uuid4().hex, collection, path.name)
        with self._lock:
            self.jobs[job.id] = job
        self._executor.submit(self._run, job, path)
        return job

    def get(self, job_id: str) -> UploadJob | None:
        with self._lock:
            return self.jobs.get(job_id)

    def _run(self, job: UploadJob, path: Path) -> None:
        job.status = "running"
        try:
            report = self.service.ingest(str(path), job.collection)  # one file: nothing else can be removed
        except EmberError as exc:
            job.status, job.error = "failed", str(exc)
            return
        except Exception as exc:  # noqa: BLE001 - recorded on the job, which is what the client polls
            job.status, job.error = "failed", f"{type(exc).__name__}: {exc}"
            return
        job.ingest_job_id, job.counts, job.chunks_written = (
            report.job_id,
            report.counts,
            report.chunks_written,
        )
        failed = [r for r in report.results if r.outcome in ("failed", "skipped")]
        job.status = "failed" if failed else "completed"
        job.error = failed[0].reason if failed else None

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
