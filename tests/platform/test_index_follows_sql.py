"""The index follows SQL: after a crash at any point of an ingest, one more command (an ingest or a
search) leaves the index holding exactly the committed chunks. Real SQLite and PostgreSQL, real
`ember ingest` processes, real kill -9."""

import os
import signal
import subprocess
import sys
import time

import faiss
import pytest
from sqlalchemy import func, select

from ember.platform import index_sync
from ember.platform.service import EmberService
from ember.platform.settings import Settings
from ember.platform.tables import Document
from ember.retrieval.collection_index import CollectionIndex

FILES = 150


def marker(i: int) -> str:
    """A word found in file i alone (letters only, so the term splitter keeps it whole)."""
    return "mark" + "".join(chr(ord("a") + int(d)) for d in f"{i:04d}")


def make_corpus(root, version: int = 1):
    root.mkdir(exist_ok=True)
    for i in range(FILES):
        body = f"Version {version}. The {marker(i)} valve regulates pressure in circuit {i}. " * 3
        (root / f"doc{i:04d}.md").write_text(f"# Document {i}\n\n{body}")
    return root


def sync_service(tmp_path, database_url, sync=True):
    return EmberService(Settings(home=tmp_path / "home", database_url=database_url, sync_indexes=sync))


def ember_env(service):
    return os.environ | {
        "EMBER_HOME": str(service.settings.home),
        "EMBER_DATABASE_URL": service.settings.database_url,
        "EMBER_SYNC_INDEXES": "true",
        "COLUMNS": "200",
    }


def start_ingest(service, corpus, collection="kb", *flags):
    return subprocess.Popen(
        [sys.executable, "-m", "ember.cli", "ingest", str(corpus), "-c", collection, *flags],
        env=ember_env(service),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def documents(service) -> int:
    with service.db.session() as session:
        return session.scalar(select(func.count()).select_from(Document))


def kill_when(process, ready, timeout=300.0):
    """kill -9 the process as soon as ready() holds; False if it finished first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and process.poll() is None:
        if ready():
            os.kill(process.pid, signal.SIGKILL)
            process.wait()
            return True
    process.wait()
    return False


def assert_index_equals_sql(service, collection="kb"):
    """As a fresh process sees it: every committed chunk in BM25, FAISS and the records, nothing else."""
    in_sql = index_sync.collection_chunk_ids(service.db, collection)
    index = CollectionIndex(service.settings.indexes_dir / collection, service.settings.embedding_model)
    assert in_sql, "nothing was committed"
    assert index.chunk_ids() == set(index.records) == in_sql
    assert set(index.bm25.ids[index.bm25.alive].tolist()) == in_sql
    assert set(faiss.vector_to_array(index.dense.index.id_map).tolist()) == in_sql
    assert index.content_revision == index_sync.content_revision(service.db, collection)


def top_title(service, word):
    hits = service.search(word, ["kb"], k=1, mode="bm25").hits
    return hits[0].title if hits else None


def test_ingest_repairs_what_a_crash_left_out_of_the_index_and_says_so(tmp_path, database_url):
    corpus = make_corpus(tmp_path / "docs")
    # What a crash between the SQL commits and the index save leaves: documents in SQL, no index.
    sync_service(tmp_path, database_url, sync=False).ingest(str(corpus), "kb")
    service = sync_service(tmp_path, database_url)
    report = service.ingest(str(corpus), "kb")
    assert report.counts["unchanged"] == FILES and report.chunks_written == 0
    in_sql = index_sync.collection_chunk_ids(service.db, "kb")
    assert report.index_repair.missing == in_sql and not report.index_repair.stale
    assert_index_equals_sql(service)
    assert service.ingest(str(corpus), "kb").index_repair is None  # level now: nothing more to repair
    service.db.dispose()


def test_a_search_brings_a_lagging_index_level_with_sql(tmp_path, database_url):
    corpus = make_corpus(tmp_path / "docs")
    service = sync_service(tmp_path, database_url)
    service.ingest(str(corpus), "kb")
    (corpus / "doc0007.md").write_text("# Replaced\n\nThe zeppelin hangar stores airships.")
    (corpus / "doc0008.md").unlink()
    sync_service(tmp_path, database_url, sync=False).ingest(str(corpus), "kb")  # SQL only
    assert top_title(service, "zeppelin") == "Replaced"
    assert top_title(service, marker(8)) is None and top_title(service, marker(7)) is None
    assert_index_equals_sql(service)
    service.db.dispose()


def test_ingest_batches_embedding_across_files_with_progress(tmp_path, database_url):
    corpus = make_corpus(tmp_path / "docs")
    service = sync_service(tmp_path, database_url)
    indexed = []
    report = service.ingest(str(corpus), "kb", on_indexed=indexed.append)
    assert sum(indexed) == report.chunks_written
    assert len(indexed) < FILES / 10, "chunks should be embedded in batches across files, not per file"
    assert_index_equals_sql(service)
    service.db.dispose()


@pytest.mark.slow  # three `ember ingest` processes, each loading torch and MiniLM
def test_kill_9_after_some_files_then_ingest_again(tmp_path, database_url):
    corpus = make_corpus(tmp_path / "docs")
    service = sync_service(tmp_path, database_url)
    process = start_ingest(service, corpus)
    assert kill_when(process, lambda: documents(service) >= 20), "the ingest finished before the kill"
    assert 20 <= documents(service) < FILES

    rerun = subprocess.run(
        [sys.executable, "-m", "ember.cli", "ingest", str(corpus), "-c", "kb"],
        env=ember_env(service),
        capture_output=True,
        text=True,
    )
    assert rerun.returncode == 0, rerun.stderr
    assert "index repaired" in rerun.stdout
    assert_index_equals_sql(service)
    assert top_title(service, marker(3)) == "Document 3"

    # Now with an index in place: every file changes, and the run dies midway. The index holds the
    # old chunks of the rewritten documents (stale) and lacks their new ones (missing).
    make_corpus(corpus, version=2)
    process = start_ingest(service, corpus)
    before = index_sync.content_revision(service.db, "kb")
    assert kill_when(process, lambda: index_sync.content_revision(service.db, "kb") >= before + 20)
    assert top_title(service, "Version 2")  # a search is the one more command
    assert_index_equals_sql(service)
    service.db.dispose()


@pytest.mark.slow  # several `ember ingest` processes, each loading torch and MiniLM
def test_kill_9_during_the_index_save(tmp_path, database_url):
    corpus = make_corpus(tmp_path / "docs")
    service = sync_service(tmp_path, database_url)
    index_dir = service.settings.indexes_dir / "kb"

    def saving() -> bool:
        return index_dir.is_dir() and any(p.name.startswith(".staging-") for p in os.scandir(index_dir))

    killed = False
    for attempt in range(4):  # the save is short: if the run ends before the kill, change files and retry
        make_corpus(corpus, version=attempt + 1)
        if kill_when(start_ingest(service, corpus), saving):
            killed = True
            break
    assert killed, "no save was caught in four runs"
    assert documents(service) == FILES
    assert top_title(service, marker(42)) == "Document 42"
    assert_index_equals_sql(service)
    service.db.dispose()
