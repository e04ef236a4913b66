"""Collection names: one rule, checked before anything is written (issue 16, D4)."""

import os
import subprocess
import sys

import pytest
from sqlalchemy import func, select

from ember.platform.errors import InvalidInputError
from ember.platform.service import EmberService
from ember.platform.settings import Settings
from ember.platform.tables import Collection, Document, IngestJob
from ember.retrieval.store import IndexStore, InvalidCollectionName

UNUSABLE = ["my notes", "a/b", "notes😀", "..", ".hidden", "-rf", "x" * 201, "tab\there"]


@pytest.fixture
def syncing_service(tmp_path, database_url):
    """A service with the real index hook, which is what failed on a bad name after the first commit."""
    svc = EmberService(Settings(home=tmp_path / "home", database_url=database_url, sync_indexes=True))
    yield svc
    svc.db.dispose()


@pytest.fixture
def docs(tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.md").write_text("# A\n\nSome text about lighthouses.")
    (folder / "b.md").write_text("# B\n\nMore text about harbours.")
    return folder


def _rows(svc: EmberService, table) -> int:  # noqa: ANN001
    with svc.db.session() as session:
        return session.scalar(select(func.count()).select_from(table))


@pytest.mark.parametrize("name", UNUSABLE)
def test_unusable_name_is_rejected_before_any_write(syncing_service, docs, name):
    with pytest.raises(InvalidInputError) as ingest_error:
        syncing_service.ingest(str(docs), name)
    assert repr(name) in str(ingest_error.value)
    assert (_rows(syncing_service, Collection), _rows(syncing_service, Document)) == (0, 0)
    assert _rows(syncing_service, IngestJob) == 0

    with pytest.raises(InvalidInputError):
        syncing_service.create_collection(name)
    syncing_service.create_collection("kb")
    with pytest.raises(InvalidInputError):
        syncing_service.rename_collection("kb", name)
    assert [c.name for c in syncing_service.list_collections()] == ["kb"]


@pytest.mark.parametrize("name", UNUSABLE)
def test_service_and_index_store_share_one_rule(syncing_service, tmp_path, name):
    with pytest.raises(InvalidCollectionName) as store_error:
        IndexStore(tmp_path / "indexes").path_for(name)
    with pytest.raises(InvalidInputError) as service_error:
        syncing_service.create_collection(name)
    assert str(service_error.value) == str(store_error.value)


@pytest.mark.parametrize("name", ["kb", "报告", "v1.2_notes-x", "x" * 200])
def test_usable_names_are_accepted(syncing_service, tmp_path, name):
    assert syncing_service.create_collection(name).name == name
    assert IndexStore(tmp_path / "indexes").path_for(name).name == name


def _store_unchecked_name(svc: EmberService, name: str) -> None:
    """A collection stored by an older Ember, which did not check names."""
    with svc.db.session() as session:
        session.add(Collection(name=name))


def test_a_stored_bad_name_gets_clear_errors_and_can_be_renamed_or_deleted(syncing_service):
    _store_unchecked_name(syncing_service, "my notes")
    with pytest.raises(InvalidInputError, match="'my notes' contains ' '.*rename the collection"):
        syncing_service.check_indexes()
    with pytest.raises(InvalidInputError, match="rename the collection"):
        syncing_service.rebuild_index("my notes")

    syncing_service.rename_collection("my notes", "my-notes")
    assert [d.collection for d in syncing_service.check_indexes().drifts] == ["my-notes"]

    _store_unchecked_name(syncing_service, "a/b")
    syncing_service.delete_collection("a/b")
    assert [c.name for c in syncing_service.list_collections()] == ["my-notes"]


@pytest.fixture
def ember(tmp_path):
    env = os.environ | {"EMBER_HOME": str(tmp_path / "home"), "COLUMNS": "1000"}
    env.pop("EMBER_DATABASE_URL", None)

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "ember.cli", *args], env=env, capture_output=True, text=True
        )

    return run


def test_cli_gives_one_line_errors_for_bad_names(ember, tmp_path, docs):
    rejected = ember("ingest", str(docs), "-c", "my notes")
    assert rejected.returncode == 2
    assert "error: collection name 'my notes' contains ' '" in rejected.stderr
    assert "Traceback" not in rejected.stderr

    svc = EmberService(Settings(home=tmp_path / "home"))
    _store_unchecked_name(svc, "my notes")
    svc.db.dispose()
    check = ember("index", "check")
    assert check.returncode == 2 and "Traceback" not in check.stderr
    assert "rename the collection" in check.stderr
    assert ember("collections", "rename", "my notes", "my-notes").returncode == 0
    assert ember("index", "check").returncode == 0
    assert ember("collections", "delete", "my-notes", "--yes").returncode == 0
