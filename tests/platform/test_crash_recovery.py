"""kill -9 a real `ember ingest` midway, re-run it, and compare with an uninterrupted run."""

import os
import signal
import subprocess
import sys
import time

from sqlalchemy import func, select

from ember.platform.service import EmberService
from ember.platform.settings import Settings
from ember.platform.tables import Document, IngestJob
from tests.platform.test_ingest import snapshot

FILES = 400


def make_corpus(root):
    root.mkdir()
    for i in range(FILES):
        body = "\n\n".join(
            f"File {i} paragraph {p}: " + "pumps move fluids through pipes " * 30 for p in range(12)
        )
        (root / f"doc{i:04d}.md").write_text(f"# Document {i}\n\n{body}")
    return root


def ingest_cli(home, url, corpus):
    env = os.environ | {"EMBER_HOME": str(home), "EMBER_DATABASE_URL": url, "EMBER_SYNC_INDEXES": "false"}
    return subprocess.Popen(
        [sys.executable, "-m", "ember.cli", "ingest", str(corpus), "-c", "kb"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def children_of(pid):
    children = []
    for entry in os.listdir("/proc"):
        try:
            with open(f"/proc/{entry}/stat") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == pid:
            children.append(int(entry))
    return children


def wait_gone(pids, timeout=30.0):
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if os.path.exists(f"/proc/{p}") and "Z" not in _state(p)]
        time.sleep(0.2)
    return alive


def _state(pid):
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_kill_9_midway_then_rerun_equals_a_clean_run(tmp_path, database_url):
    corpus = make_corpus(tmp_path / "corpus")
    crashed = EmberService(Settings(home=tmp_path / "home", database_url=database_url, sync_indexes=False))
    process = ingest_cli(tmp_path / "home", database_url, corpus)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and process.poll() is None:
            with crashed.db.session() as session:
                if session.scalar(select(func.count()).select_from(Document)) >= 20:
                    break
            time.sleep(0.02)
        assert process.poll() is None, "the ingest finished before it could be killed"
        workers = children_of(process.pid)
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    with crashed.db.session() as session:
        partial = session.scalar(select(func.count()).select_from(Document))
    assert 20 <= partial < FILES
    assert workers, "the ingest ran without worker processes"
    assert wait_gone(workers) == [], "worker processes outlived their killed parent"

    report = crashed.ingest(str(corpus), "kb")
    assert report.counts["failed"] == 0
    assert (
        report.counts["unchanged"] >= partial - 1
        and report.counts["unchanged"] + report.counts["added"] == FILES
    )
    with crashed.db.session() as session:
        statuses = session.scalars(select(IngestJob.status).order_by(IngestJob.id)).all()
    assert statuses == ["interrupted", "completed"]

    clean = EmberService(
        Settings(
            home=tmp_path / "clean", database_url=f"sqlite:///{tmp_path / 'clean.db'}", sync_indexes=False
        )
    )
    clean.ingest(str(corpus), "kb")
    assert snapshot(crashed, "kb") == snapshot(clean, "kb")
    crashed.db.dispose()
    clean.db.dispose()
