from sqlalchemy import func, select

from ember.platform.ingest.pipeline import ChunkChange, IngestOptions
from ember.platform.tables import Chunk, Document
from tests.platform.files import NOISY_HTML, make_docx, make_pdf

PARAGRAPH = "Ember stores every chunk with its heading path and page so that answers can cite them. "


def write_corpus(root):
    root.mkdir(parents=True, exist_ok=True)
    (root / "guide.md").write_text("# Guide\n\n" + PARAGRAPH * 40 + "\n\n## Details\n\n" + PARAGRAPH * 10)
    (root / "notes.txt").write_text("Plain notes about pumps.\n\nAnother paragraph about valves.")
    (root / "page.html").write_text(NOISY_HTML)
    make_pdf(root / "slides.pdf", ["First slide text.", "Second slide text."])
    make_docx(root / "manual.docx")
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "data.json").write_text('{"title": "Data", "rows": [{"name": "a", "v": "one"}]}')
    return root


def snapshot(service, collection):
    """Everything stored about a collection, independent of row ids and timestamps."""
    with service.db.session() as session:
        rows = session.execute(
            select(
                Document.source_uri,
                Document.content_hash,
                Chunk.ordinal,
                Chunk.text,
                Chunk.page,
                Chunk.heading_path,
                Chunk.char_start,
                Chunk.char_end,
            )
            .join(Chunk, Chunk.document_id == Document.id)
            .order_by(Document.source_uri, Chunk.ordinal)
        ).all()
    return [tuple(tuple(v) if isinstance(v, list) else v for v in row) for row in rows]


class RecordingHook:
    def __init__(self):
        self.changes: list[ChunkChange] = []
        self.finished: list[str] = []

    def on_run_started(self, collection_name, on_indexed):
        return None

    def on_chunks_committed(self, change):
        self.changes.append(change)

    def on_run_finished(self, collection_name):
        self.finished.append(collection_name)


def test_ingest_every_type_then_rerun_changes_nothing(service, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    first = service.ingest(str(corpus), "kb")
    assert first.counts["added"] == 6 and first.counts["failed"] == 0
    before = snapshot(service, "kb")
    second = service.ingest(str(corpus), "kb")
    assert second.counts == {
        "added": 0,
        "updated": 0,
        "unchanged": 6,
        "removed": 0,
        "failed": 0,
        "skipped": 0,
    }
    assert snapshot(service, "kb") == before
    with service.db.session() as session:
        duplicates = session.execute(
            select(Chunk.document_id, Chunk.ordinal, func.count())
            .group_by(Chunk.document_id, Chunk.ordinal)
            .having(func.count() > 1)
        ).all()
    assert duplicates == []
    summary = service.get_collection("kb")
    assert summary.documents == 6 and summary.chunks == len(before)


def test_edit_add_and_delete_are_picked_up(service, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    hook = RecordingHook()
    service.ingest_hook = hook
    service.ingest(str(corpus), "kb")
    old_chunk_ids = {c for change in hook.changes for c in change.added_chunk_ids}
    hook.changes.clear()

    (corpus / "notes.txt").write_text("Rewritten notes about compressors.")
    (corpus / "new.md").write_text("# New\n\nA brand new page.")
    (corpus / "page.html").unlink()
    report = service.ingest(str(corpus), "kb")
    assert report.counts == {
        "added": 1,
        "updated": 1,
        "unchanged": 4,
        "removed": 1,
        "failed": 0,
        "skipped": 0,
    }

    texts = [row[3] for row in snapshot(service, "kb")]
    assert "Rewritten notes about compressors." in texts
    assert not any("Plain notes about pumps" in t for t in texts)
    assert not any("kettle" in t for t in texts)
    removed = {c for change in hook.changes for c in change.removed_chunk_ids}
    assert removed and removed <= old_chunk_ids
    assert hook.finished == ["kb", "kb"]


def test_no_delete_keeps_documents_of_missing_files(service, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    service.ingest(str(corpus), "kb")
    (corpus / "notes.txt").unlink()
    report = service.ingest(str(corpus), "kb", IngestOptions(delete_missing=False))
    assert report.counts["removed"] == 0
    assert any(d.source_uri.endswith("notes.txt") for d in service.list_documents("kb"))


def test_glob_and_single_file_inputs(service, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    report = service.ingest(str(corpus), "md", pattern="*.md")
    assert [r.source_uri.rsplit("/", 1)[-1] for r in report.results] == ["guide.md"]
    report = service.ingest(str(corpus / "*.txt"), "txt")
    assert [r.outcome for r in report.results] == ["added"]
    report = service.ingest(str(corpus / "sub" / "data.json"), "one")
    assert report.counts["added"] == 1
    # a glob run only removes what its own pattern covers
    report = service.ingest(str(corpus), "md", pattern="*.md")
    assert report.counts["removed"] == 0


def test_changing_chunk_size_rechunks_and_persists_on_the_collection(service, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    service.ingest(str(corpus), "kb")
    coarse = service.get_collection("kb").chunks
    report = service.ingest(str(corpus), "kb", IngestOptions(chunk_size=64, chunk_overlap=8))
    assert report.counts["updated"] == 6
    summary = service.get_collection("kb")
    assert (summary.chunk_size, summary.chunk_overlap) == (64, 8)
    assert summary.chunks > coarse
    assert service.ingest(str(corpus), "kb").counts["unchanged"] == 6


def test_one_bad_file_never_harms_the_others(service, tmp_path, settings):
    corpus = write_corpus(tmp_path / "docs")
    service.ingest(str(corpus), "kb")
    before = snapshot(service, "kb")
    # a good file turns bad, and new bad files appear
    (corpus / "notes.txt").write_bytes(b"\xff\xfe\xfa broken \xc3")
    (corpus / "notes.txt").write_bytes(b"ok start \xc3\x28 invalid")
    (corpus / "empty.md").write_bytes(b"")
    (corpus / "corrupt.pdf").write_bytes(b"%PDF-1.7 not a pdf at all")
    (corpus / "tool.exe").write_bytes(b"MZ\x00\x00binary")
    settings.max_file_mb = 0.0001  # ~100 bytes: every real file is now over the limit ...
    report = service.ingest(str(corpus), "kb")
    failed = {r.source_uri.rsplit("/", 1)[-1]: r.reason for r in report.failed}
    assert "over the size limit" in failed["guide.md"]
    settings.max_file_mb = 200
    report = service.ingest(str(corpus), "kb")
    failed = {r.source_uri.rsplit("/", 1)[-1]: r.reason for r in report.failed}
    assert set(failed) == {"notes.txt", "empty.md", "corrupt.pdf"}
    assert "not valid UTF-8" in failed["notes.txt"]
    assert "0 bytes" in failed["empty.md"]
    assert "corrupt" in failed["corrupt.pdf"]
    assert [r.reason for r in report.results if r.outcome == "skipped"] == [
        "tool.exe: no loader for '.exe' files"
    ]
    assert report.counts["unchanged"] == 5
    # the last good version of notes.txt is still stored, untouched
    assert snapshot(service, "kb") == before


def test_collections_rename_and_delete(service, tmp_path):
    corpus = write_corpus(tmp_path / "docs")
    service.ingest(str(corpus), "kb")
    service.ingest(str(corpus / "notes.txt"), "other")
    service.rename_collection("kb", "manuals")
    assert [c.name for c in service.list_collections()] == ["manuals", "other"]
    service.delete_collection("manuals")
    with service.db.session() as session:
        assert session.scalar(select(func.count()).select_from(Document)) == 1
        assert (
            session.scalar(select(func.count()).select_from(Chunk)) == service.get_collection("other").chunks
        )


def test_worker_processes_store_exactly_what_one_process_stores(tmp_path, database_url):
    from ember.platform.service import EmberService
    from ember.platform.settings import Settings

    corpus = write_corpus(tmp_path / "docs")
    for i in range(10):
        (corpus / f"extra{i}.md").write_text(f"# Extra {i}\n\n" + PARAGRAPH * (i + 5))
    parallel = EmberService(
        Settings(home=tmp_path / "p", database_url=database_url, ingest_workers=2, sync_indexes=False)
    )
    serial = EmberService(
        Settings(
            home=tmp_path / "s",
            database_url=f"sqlite:///{tmp_path / 's.db'}",
            ingest_workers=1,
            sync_indexes=False,
        )
    )
    assert parallel.ingest(str(corpus), "kb").counts["added"] == 16
    serial.ingest(str(corpus), "kb")
    assert snapshot(parallel, "kb") == snapshot(serial, "kb")


def test_chunks_counted_with_a_bpe_tokenizer_stay_within_budget(tmp_path, database_url):
    from ember.llm.tokenizer import Tokenizer
    from ember.platform.service import EmberService
    from ember.platform.settings import Settings

    corpus = write_corpus(tmp_path / "docs")
    for i in range(6):
        (corpus / f"long{i}.md").write_text(f"# Long {i}\n\n" + (PARAGRAPH + "\n\n") * (30 + i))
    tokenizer = Tokenizer.train([PARAGRAPH * 50, "pumps valves filters hoses"], vocab_size=400)
    tokenizer.save(tmp_path / "tok.json")
    settings = Settings(
        home=tmp_path / "h",
        database_url=database_url,
        chunk_tokenizer=str(tmp_path / "tok.json"),
        chunk_size=96,
        chunk_overlap=16,
        ingest_workers=2,
        sync_indexes=False,
    )
    service = EmberService(settings)
    assert service.ingest(str(corpus), "kb").counts["failed"] == 0
    rows = snapshot(service, "kb")
    assert len(rows) > 20
    with service.db.session() as session:
        counts = session.execute(select(Chunk.text, Chunk.token_count)).all()
    for text, count in counts:
        assert count == tokenizer.count_tokens(text) <= 96


def test_renaming_or_deleting_a_collection_moves_or_drops_its_index(tmp_path):
    from ember.platform.service import EmberService
    from ember.platform.settings import Settings

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "pumps.md").write_text("# Pumps\n\nCentrifugal pumps move water with an impeller.")
    (docs / "valves.md").write_text("# Valves\n\nGate valves stop the flow of water.")
    (docs / "hoses.md").write_text("# Hoses\n\nRubber hoses carry water to the garden.")
    service = EmberService(Settings(home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'e.db'}"))
    service.ingest(str(docs), "kb")
    assert (tmp_path / "home" / "indexes" / "kb").is_dir()
    service.rename_collection("kb", "manuals")
    assert not (tmp_path / "home" / "indexes" / "kb").exists()
    hits = service.search("impeller", ["manuals"], k=1, mode="bm25").hits
    assert hits and "impeller" in hits[0].text
    service.delete_collection("manuals")
    assert not (tmp_path / "home" / "indexes" / "manuals").exists()
