"""One writer per collection across processes, no lost index updates, and readers that pick up a new
generation without a restart. Real processes, real SQLite and PostgreSQL."""

import os
import signal
import subprocess
import sys

import pytest

from ember.retrieval.writer_lock import WriterLock
from tests.platform.test_index_follows_sql import (
    FILES,
    assert_index_equals_sql,
    ember_env,
    make_corpus,
    marker,
    start_ingest,
    sync_service,
    top_title,
)

_HOLDER = "import sys, time; from ember.retrieval.writer_lock import WriterLock\n" + (
    "lock = WriterLock(sys.argv[1], 'kb'); lock.acquire(); print('held', flush=True); time.sleep(600)"
)


def test_the_writer_lock_excludes_other_processes_until_its_holder_dies(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLDER, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "held"
        lock = WriterLock(tmp_path, "kb")
        assert not lock.acquire(blocking=False)
        assert WriterLock(tmp_path, "other").acquire(blocking=False)  # per collection
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait()
        assert lock.acquire()  # the kernel released the dead holder's lock
        assert not WriterLock(tmp_path, "kb").acquire(blocking=False)  # threads of one process too
        lock.release()
        assert WriterLock(tmp_path, "kb").acquire(blocking=False)
    finally:
        holder.kill()
        holder.wait()


@pytest.mark.slow  # two `ember ingest` processes at once, each loading torch and MiniLM
def test_two_concurrent_ingests_into_one_collection_lose_nothing(tmp_path, database_url):
    service = sync_service(tmp_path, database_url)
    service.upgrade_database()  # both start on a migrated database: this test is about the index
    left, right = tmp_path / "left", tmp_path / "right"
    make_corpus(left)
    make_corpus(right, version=2)
    processes = [start_ingest(service, folder) for folder in (left, right)]
    for process in processes:
        _, stderr = process.communicate(timeout=900)
        assert process.returncode == 0, stderr
    assert service.get_collection("kb").documents == 2 * FILES
    assert_index_equals_sql(service)
    service.db.dispose()


@pytest.mark.slow  # one `ember ingest` process
def test_a_reader_sees_a_generation_another_process_saved_without_a_restart(tmp_path, database_url):
    service = sync_service(tmp_path, database_url)
    make_corpus(tmp_path / "docs")
    service.ingest(str(tmp_path / "docs"), "kb")
    reader = sync_service(tmp_path, database_url, sync=False)  # never reconciles: it only reads generations
    assert top_title(reader, "zeppelin") is None  # the reader's index is loaded and cached
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "airships.md").write_text("# Airships\n\nThe zeppelin hangar stores airships.")
    writer = subprocess.run(
        [sys.executable, "-m", "ember.cli", "ingest", str(extra), "-c", "kb"],
        env=ember_env(service),
        capture_output=True,
        text=True,
    )
    assert writer.returncode == 0, writer.stderr
    assert top_title(reader, "zeppelin") == "Airships"
    assert top_title(reader, marker(5)) == "Document 5"
    assert_index_equals_sql(service)
    reader.db.dispose()
    service.db.dispose()
