"""`**` globs through symlink loops list each file once (issue 16, D12)."""

import pytest

from ember.platform.ingest.sources import resolve_sources


@pytest.fixture
def looped(tmp_path):
    """docs/ with two files, a hidden one, and two symlinks back up the tree (loops for a naive walk)."""
    docs = tmp_path / "docs"
    (docs / "sub").mkdir(parents=True)
    (docs / ".hidden").mkdir()
    (docs / "a.md").write_text("# A")
    (docs / "sub" / "b.md").write_text("# B")
    (docs / ".hidden" / "c.md").write_text("# C")
    (docs / "sub" / "up").symlink_to(docs, target_is_directory=True)
    (docs / "sub" / "again").symlink_to(docs / "sub", target_is_directory=True)
    return docs


def test_recursive_glob_through_symlink_loops_lists_each_file_once(looped):
    sources = resolve_sources(str(looped / "**" / "*.md"))
    assert sources.files == [looped / "a.md", looped / "sub" / "b.md"]
    assert sources.root == looped and sources.pattern == "**/*.md"


def test_relative_glob_and_folder_agree(looped, monkeypatch):
    monkeypatch.chdir(looped.parent)
    assert resolve_sources("docs/**/*.md").files == resolve_sources(str(looped)).files
    assert resolve_sources("docs/*.md").files == [looped / "a.md"]


def test_ingesting_a_looped_glob_adds_each_document_once(service, looped):
    report = service.ingest(str(looped / "**" / "*.md"), "kb")
    assert [d.title for d in service.list_documents("kb")] == ["A", "B"]
    assert len(report.results) == 2 and report.counts["added"] == 2
