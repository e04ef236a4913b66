"""The facade's operations: database status and upgrade, where uploads go, reranker training's checks."""

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


def test_store_upload_keeps_files_inside_the_collections_upload_folder(service):
    service.create_collection("notes")
    path = service.store_upload("notes", "../../etc/.passwd notes.md", b"# Notes\n")
    assert path == service.settings.home / "uploads" / "notes" / "passwd_notes.md"
    assert path.read_bytes() == b"# Notes\n"
    assert service.store_upload("notes", "", b"x").name == "upload.txt"
    again = service.store_upload("notes", "passwd notes.md", b"newer")
    assert again == path and path.read_bytes() == b"newer"  # the same name replaces the earlier upload
    with pytest.raises(NotFoundError):
        service.store_upload("nope", "a.txt", b"hi")


def test_train_reranker_needs_an_index(service):
    service.create_collection("notes")
    with pytest.raises(NotFoundError, match="ember index rebuild -c notes"):
        service.train_reranker("notes")
