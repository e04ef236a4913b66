"""The ingest hook keeps indexes in step with SQL; the service's check, repair and rebuild fix drift.

Real SQLite and real indexes throughout.
"""

import os
import subprocess
import sys

import pytest

from ember.platform import index_sync
from ember.platform.errors import NotFoundError
from ember.platform.index_sync import IndexSync
from ember.platform.service import EmberService
from ember.platform.settings import Settings
from ember.retrieval.store import IndexStore

DOCS = {
    "pumps.md": "# Pumps\n\nCentrifugal pumps move water with an impeller spinning at 2,900 rpm.",
    "valves.md": "# Valves\n\n## Gate valves\n\nA gate valve opens by lifting a wedge out of the flow path.",
    "bread.md": "# Bread\n\nKnead the dough and let it rise for one hour before baking.",
}


def _store(settings):
    """A store of its own, as another process would have."""
    return IndexStore(settings.indexes_dir, settings.embedding_model)


@pytest.fixture
def platform(tmp_path):
    settings = Settings(home=tmp_path / "home", database_url=None)
    service = EmberService(settings)
    store = _store(settings)
    service.ingest_hook = IndexSync(service.db, store)
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCS.items():
        (docs / name).write_text(text)
    return service, store, docs


def _without_sync(service):
    """A service whose ingestion commits SQL but never writes indexes: what a crash in between leaves."""
    return EmberService(service.settings.model_copy(update={"sync_indexes": False}))


def _top(service, query, mode):
    hits = service.search(query, ["kb"], k=1, mode=mode).hits
    return (hits[0].title, hits[0].location) if hits else None


def test_ingest_hook_indexes_updates_and_removals(platform):
    service, store, docs = platform
    service.ingest(str(docs), "kb")
    assert index_sync.check(service.db, store, "kb").clean
    assert _top(service, "2,900 rpm", "bm25")[0] == "Pumps"
    assert _top(service, "how does a wedge control flow", "dense") == ("Valves", "Valves")

    (docs / "pumps.md").write_text("# Pumps\n\nPositive displacement pumps trap a fixed volume of oil.")
    (docs / "bread.md").unlink()
    service.ingest(str(docs), "kb")
    reopened = _store(service.settings).get("kb")
    assert reopened.chunk_ids() == index_sync.collection_chunk_ids(service.db, "kb")
    assert _top(service, "2,900 rpm", "bm25") is None
    assert _top(service, "fixed volume of oil", "hybrid")[0] == "Pumps"
    assert all(h.title != "Bread" for h in service.search("knead dough", ["kb"], k=5, mode="dense").hits)


def test_check_finds_drift_and_repair_fixes_it(platform):
    service, _, docs = platform
    _without_sync(service).ingest(str(docs), "kb")
    [drift] = service.check_indexes().drifts
    in_sql = index_sync.collection_chunk_ids(service.db, "kb")
    assert drift.collection == "kb" and drift.indexed == 0
    assert drift.missing == in_sql and not drift.stale and not drift.clean
    service.repair_index(drift)
    assert EmberService(service.settings).check_indexes(["kb"]).drifts[0].clean  # as another process sees it

    (docs / "bread.md").unlink()
    _without_sync(service).ingest(str(docs), "kb")  # the bread chunks linger in the index
    [drift] = service.check_indexes(["kb"]).drifts
    assert drift.stale and not drift.missing and drift.indexed == len(in_sql)
    service.repair_index(drift)
    assert service.check_indexes(["kb"]).drifts[0].clean
    assert _top(service, "knead dough", "bm25") is None


def test_orphaned_index_folders_are_found_and_removed(platform):
    service, _, docs = platform
    service.ingest(str(docs), "kb")
    orphan = (
        service.settings.indexes_dir / "gone"
    )  # e.g. left by a collection deleted while its index was busy
    orphan.mkdir()
    (orphan / "manifest.json").write_text("{}")
    found = service.check_indexes()
    assert [d.collection for d in found.drifts] == ["kb"] and found.orphans == ["gone"]
    assert service.check_indexes(["kb"]).orphans == []  # only a check of everything looks for orphans
    with pytest.raises(NotFoundError):
        service.remove_orphaned_index("kb")  # a live collection's index is never an orphan
    service.remove_orphaned_index("gone")
    assert not orphan.exists() and (service.settings.indexes_dir / "kb").is_dir()
    assert service.check_indexes().orphans == []


def test_rebuild_indexes_every_chunk_from_sql(platform):
    service, _, docs = platform
    _without_sync(service).ingest(str(docs), "kb")
    totals, batches = [], []
    rebuilt = service.rebuild_index("kb", on_start=totals.append, on_batch=batches.append)
    chunks = len(index_sync.collection_chunk_ids(service.db, "kb"))
    assert rebuilt.chunks == chunks == totals[0] == sum(batches)
    assert rebuilt.embedding_model == service.settings.embedding_model and rebuilt.dense_kind == "flat"
    assert service.check_indexes(["kb"]).drifts[0].clean
    assert _top(service, "2,900 rpm", "bm25")[0] == "Pumps"
    with pytest.raises(NotFoundError):
        service.rebuild_index("nope")


@pytest.mark.slow  # five `ember` processes, each loading torch and MiniLM
def test_cli_check_repair_and_rebuild(platform):
    service, store, docs = platform
    _without_sync(service).ingest(str(docs), "kb")
    env = os.environ | {"EMBER_HOME": str(service.settings.home), "COLUMNS": "200"}
    env.pop("EMBER_DATABASE_URL", None)

    def ember(*args):
        return subprocess.run(
            [sys.executable, "-m", "ember.cli", *args], env=env, capture_output=True, text=True
        )

    found = ember("index", "check")
    assert found.returncode == 1 and "drift" in found.stdout and "--repair" in found.stderr
    fixed = ember("index", "check", "--repair")
    assert fixed.returncode == 0 and "repaired" in fixed.stdout
    assert ember("index", "check").returncode == 0
    rebuilt = ember("index", "rebuild", "-c", "kb")
    assert rebuilt.returncode == 0, rebuilt.stderr
    assert f"{len(index_sync.collection_chunk_ids(service.db, 'kb'))} chunks" in rebuilt.stdout
    found = ember("search", "gate valve wedge", "-c", "kb", "--mode", "hybrid+rerank", "--explain")
    assert found.returncode == 0, found.stderr
    assert "Valves" in found.stdout and "fused" in found.stdout and "rerank skipped" in found.stderr
