"""Uploaded documents: stored under $EMBER_HOME/uploads/<collection>/ and ingested one at a time per
API worker.

The jobs themselves are rows in SQL (the service's), so with several workers any of them reports any
upload's job. A worker runs the jobs it queued, and on starting, those left by a worker that stopped.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from ember.platform.service import EmberService, use_one_cpu_thread
from ember.platform.types import UploadJobStatus


class UploadJobs:
    def __init__(self, service: EmberService) -> None:
        self.service = service
        # One core: the local model's worker keeps the other, and its speed (api.worker_threads).
        self._executor = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="ember-ingest", initializer=use_one_cpu_thread
        )
        self._executor.submit(self._resume_orphans)  # a worker starting after a crash finishes its jobs

    def _resume_orphans(self) -> None:
        for job_id in self.service.claim_orphaned_uploads():
            self.service.ingest_upload(job_id)

    def submit(self, collection: str, filename: str, content: bytes) -> UploadJobStatus:
        job = self.service.store_upload(collection, filename, content)
        self._executor.submit(self.service.ingest_upload, job.id)
        return job

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
