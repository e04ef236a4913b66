"""The ingest hook keeps indexes in step with SQL; check, repair and rebuild fix drift (real SQLite)."""

import os
import subprocess
import sys

import pytest

from ember.platform import index_sync
from ember.platform.index_sync import IndexSync
from ember.platform.service import EmberService
from ember.platform.settings import Settings

DOCS = {
    "pumps.md": "# Pumps\n\nCentrifugal pumps move water with an impeller spinning at 2,900 rpm.",
    "valves.md": "# Valves\n\n## Gate valves\n\nA gate valve opens by lifting a wedge out of the flow path.",
    "bread.md": "# Bread\n\nKnead the dough and let it rise for one hour before baking.",
}


@pytest.fixture
def platform(tmp_path):
    settings = Settings(home=tmp_path / "home", database_url=None)
    service = EmberService(settings)
    store = index_sync.index_store(settings)  # a second store, as another process would have
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
    reopened = index_sync.index_store(service.settings).get("kb")
    assert reopened.chunk_ids() == index_sync.collection_chunk_ids(service.db, "kb")
    assert _top(service, "2,900 rpm", "bm25") is None
    assert _top(service, "fixed volume of oil", "hybrid")[0] == "Pumps"
    assert all(h.title != "Bread" for h in service.search("knead dough", ["kb"], k=5, mode="dense").hits)


def test_check_finds_drift_and_repair_fixes_it(platform):
    service, store, docs = platform
    _without_sync(service).ingest(str(docs), "kb")
    drift = index_sync.check(service.db, store, "kb")
    assert len(drift.missing) == len(index_sync.collection_chunk_ids(service.db, "kb")) and not drift.stale
    index_sync.repair(service.db, store, drift)
    assert index_sync.check(service.db, index_sync.index_store(service.settings), "kb").clean

    (docs / "bread.md").unlink()
    _without_sync(service).ingest(str(docs), "kb")  # the bread chunks linger in the index
    drift = index_sync.check(service.db, store, "kb")
    assert drift.stale and not drift.missing
    index_sync.repair(service.db, store, drift)
    assert index_sync.check(service.db, store, "kb").clean


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
