"""The real `ember` command line: exit codes and output."""

import os
import subprocess
import sys

import pytest

from ember.platform.migrate import head_revision


@pytest.fixture
def ember(tmp_path):
    home = str(tmp_path / "home")
    env = os.environ | {"EMBER_HOME": home, "COLUMNS": "1000", "EMBER_SYNC_INDEXES": "false"}
    env.pop("EMBER_DATABASE_URL", None)

    def run(*args):
        return subprocess.run(
            [sys.executable, "-m", "ember.cli", *args], env=env, capture_output=True, text=True
        )

    return run


def test_ingest_exit_codes(ember, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nSome text.")
    ok = ember("ingest", str(docs), "-c", "kb")
    assert ok.returncode == 0, ok.stderr
    assert "added" in ok.stdout and "Ingested into 'kb'" in ok.stdout

    (docs / "bad.txt").write_bytes(b"\xc3\x28")
    partial = ember("ingest", str(docs), "-c", "kb")
    assert partial.returncode == 1
    assert "bad.txt: not valid UTF-8" in partial.stdout

    missing = ember("ingest", str(tmp_path / "nope"), "-c", "kb")
    assert missing.returncode == 2
    assert "no such file or folder" in missing.stderr

    bad_overlap = ember("ingest", str(docs), "-c", "kb", "--chunk-size", "100", "--overlap", "90")
    assert bad_overlap.returncode == 2 and "overlap must be" in bad_overlap.stderr
    assert ember("ingest", str(docs)).returncode == 2  # missing -c is a usage error


def test_collections_and_documents_commands(ember, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "guide.md").write_text("# Guide\n\nHello.")
    assert ember("ingest", str(docs), "-c", "kb").returncode == 0
    listing = ember("collections", "list")
    assert "kb" in listing.stdout
    assert "guide.md" in ember("documents", "list", "-c", "kb").stdout
    assert ember("collections", "rename", "kb", "manuals").returncode == 0
    assert "manuals" in ember("collections", "show", "manuals").stdout
    missing = ember("collections", "show", "kb")
    assert missing.returncode == 1 and "collection 'kb' does not exist" in missing.stderr
    assert ember("collections", "delete", "manuals", "--yes").returncode == 0
    assert "manuals" not in ember("collections", "list").stdout


def test_config_show_names_sources(ember, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text("chunk_size = 256\n")
    shown = ember("config", "show").stdout
    assert "env EMBER_HOME" in shown
    assert "256" in shown and f"file {home / 'config.toml'}" in shown
    assert f"revision {head_revision()}" in ember("db", "upgrade").stdout


def test_db_status_then_upgrade(ember):
    fresh = ember("db", "status")
    assert fresh.returncode == 0, fresh.stderr
    assert "revision none" in fresh.stdout and "run `ember db upgrade`" in fresh.stdout
    assert f"revision {head_revision()}" in ember("db", "upgrade").stdout
    status = ember("db", "status")
    assert f"revision {head_revision()}" in status.stdout and "up to date" in status.stdout


def test_index_commands_report_unknown_collections_and_missing_indexes(ember, tmp_path):
    rebuild = ember("index", "rebuild", "-c", "nope")
    assert rebuild.returncode == 1 and "collection 'nope' does not exist" in rebuild.stderr
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\nSome text.")
    assert ember("ingest", str(docs), "-c", "kb").returncode == 0  # EMBER_SYNC_INDEXES=false: no index
    untrained = ember("retrieval", "train-reranker", "-c", "kb")
    assert untrained.returncode == 1
    assert "collection 'kb' has no index; run `ember index rebuild -c kb`" in untrained.stderr
