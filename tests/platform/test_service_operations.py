"""The facade's operations: database status and upgrade, where uploads go, reranker training's checks."""

from pathlib import Path

import pytest

from ember.platform.errors import NotFoundError
from ember.platform.migrate import head_revision
from ember.platform.service import EmberService


def test_database_status_reads_without_upgrading_and_upgrade_brings_it_to_head(settings):
    fresh = EmberService(settings)
    before = fresh.database_status()
    assert before.revision is None and before.head == head_revision() and not before.up_to_date
    assert "***" in before.url or "@" not in before.url  # a password never shows
    upgraded = fresh.upgrade_database()
    assert upgraded.revision == head_revision() and upgraded.up_to_date
    assert fresh.database_status().up_to_date
    fresh.db.dispose()


def _stored_files(service: EmberService) -> list[Path]:
    return sorted(p for p in (service.settings.home / "uploads").rglob("*") if p.is_file())


def test_store_upload_keeps_files_inside_the_collections_upload_folder(service):
    service.create_collection("notes")
    job = service.store_upload("notes", "../../etc/.passwd notes.md", b"# Notes\n")
    assert (job.status, job.filename, job.collection) == ("queued", "../../etc/.passwd notes.md", "notes")
    [path] = _stored_files(service)
    assert path.parent.parent == service.settings.home / "uploads" / "notes"
    assert path.name == "passwd notes.md" and path.read_bytes() == b"# Notes\n"
    service.store_upload("notes", "passwd notes.md", b"newer")
    assert _stored_files(service) == [path] and path.read_bytes() == b"newer"  # the same name: replaced
    service.store_upload("notes", "", b"x")
    assert "upload.txt" in [p.name for p in _stored_files(service)]
    with pytest.raises(NotFoundError):
        service.store_upload("nope", "a.txt", b"hi")


def test_an_upload_job_lives_in_sql_and_records_its_outcome(service):
    service.create_collection("notes")
    queued = service.store_upload("notes", "报告.md", b"# Report\n\nForty boats in the harbour.\n")
    other_process = EmberService(service.settings)  # another API worker over the same database
    assert other_process.get_upload_job(queued.id) == queued
    done = service.ingest_upload(queued.id)
    assert (done.status, done.error, done.counts["added"], done.chunks_written) == ("completed", None, 1, 1)
    assert other_process.get_upload_job(queued.id) == done
    assert other_process.get_ingest_job(done.ingest_job_id).status == "completed"
    skipped = service.ingest_upload(service.store_upload("notes", "blob.bin", bytes(range(256))).id)
    assert skipped.status == "failed" and "blob.bin" in skipped.error
    with pytest.raises(NotFoundError):
        service.get_upload_job(done.ingest_job_id)  # an ingest run is not an upload job
    other_process.db.dispose()


def test_train_reranker_needs_an_index(service):
    service.create_collection("notes")
    with pytest.raises(NotFoundError, match="ember index rebuild -c notes"):
        service.train_reranker("notes")
