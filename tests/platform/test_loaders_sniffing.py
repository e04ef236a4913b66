"""Real document folders: .gz files, text files of unknown extension, binaries skipped with a reason."""

from __future__ import annotations

import gzip
import os

import pytest

from ember.platform.ingest.document import LoaderError, UnsupportedFile
from ember.platform.ingest.loaders import loader_for
from ember.platform.ingest.loaders.sniff import looks_like_text
from ember.platform.service import EmberService
from ember.platform.settings import Settings

CHANGELOG = (
    "ember (0.2-1) unstable; urgency=low\n\n"
    "  * New upstream release: compressed files are ingested.\n\n"
    " -- Maintainer <m@example.org>  Mon, 01 Jan 2024 12:00:00 +0000\n"
)
# A DVI header and random bytes: no extension Ember knows, and not text.
BINARY = b"\xf7\x02\x01\x83\x92\xc0\x1c;\x00\x00\x00\x00\x03\xe8" + os.urandom(2048)


def load(path, **options):
    return loader_for(path, **options)(path, path.read_bytes())


@pytest.mark.parametrize("name", ["README.Debian", "CHANGES", "foo.conf", "Makefile", "setup.cfg"])
def test_text_of_unknown_extension_loads_as_text_titled_by_its_whole_name(tmp_path, name):
    path = tmp_path / name
    path.write_text("Settings for the pump.\n\nRestart it after every change — it reads them once.\n")
    document = load(path)
    assert document.title == name and document.mime_type == "text/plain"
    assert [b.text for b in document.blocks][1].startswith("Restart it")


def test_binary_of_unknown_extension_is_skipped_with_the_reason(tmp_path):
    for name in ("refcard.dvi", "blob"):
        (tmp_path / name).write_bytes(BINARY)
        with pytest.raises(UnsupportedFile, match=f"{name}: binary content"):
            load(tmp_path / name)


def test_known_binary_types_are_skipped_without_reading_them(tmp_path):
    with pytest.raises(UnsupportedFile, match="photo.png: no loader for '.png' files"):
        loader_for(tmp_path / "photo.png")  # the file does not even exist


def test_legacy_encoded_text_fails_as_text_not_as_binary(tmp_path):
    path = tmp_path / "AUTHORS"
    path.write_bytes("Antonio Díaz Díaz wrote most of it.\n".encode("latin-1"))
    with pytest.raises(LoaderError, match="AUTHORS: not valid UTF-8"):
        load(path)


def test_sniffing_tolerates_a_character_cut_at_the_end_of_the_sample():
    head = ("é" * 600).encode()[:1023]  # ends inside a two-byte character
    assert looks_like_text(head)
    assert not looks_like_text(b"")
    assert not looks_like_text(bytes(range(1, 32)) * 8)  # control bytes, no NUL


def test_gzip_loads_by_the_extension_inside(tmp_path):
    markdown = tmp_path / "guide.md.gz"
    markdown.write_bytes(gzip.compress(b"# Guide\n\n## Pumps\n\nPrime the pump before starting it.\n"))
    document = load(markdown)
    assert document.title == "Guide" and document.mime_type == "text/markdown"
    assert document.blocks[-1].heading_path == ("Guide", "Pumps")
    assert document.metadata["compression"] == "gzip"

    changelog = tmp_path / "changelog.Debian.gz"
    changelog.write_bytes(gzip.compress(CHANGELOG.encode()))
    document = load(changelog)
    assert document.title == "changelog.Debian" and "compressed files" in document.blocks[1].text


def test_gzip_of_several_members_is_read_whole(tmp_path):
    path = tmp_path / "NEWS.gz"
    path.write_bytes(gzip.compress(b"First member.\n\n") + gzip.compress(b"Second member.\n"))
    assert [b.text for b in load(path).blocks] == ["First member.", "Second member."]


def test_the_size_limit_applies_to_the_decompressed_size(tmp_path):
    path = tmp_path / "huge.txt.gz"
    path.write_bytes(gzip.compress(b"all work and no play\n" * 100_000))  # ~2 MB from a few kB
    assert path.stat().st_size < 100_000
    with pytest.raises(LoaderError, match="huge.txt.gz: over the size limit of 1.0 MB once decompressed"):
        load(path, max_bytes=2**20)
    assert len(load(path, max_bytes=4 * 2**20).blocks) == 1


def test_a_bad_archive_fails_with_a_clear_reason(tmp_path):
    whole = gzip.compress(CHANGELOG.encode() * 50)
    cases = {
        "garbage.gz": b"\x1f\x8b\x08\x00 this is not deflate data",
        "cut.txt.gz": whole[: len(whole) // 2],
    }
    for name, data in cases.items():
        (tmp_path / name).write_bytes(data)
        with pytest.raises(LoaderError, match=f"{name}: not a valid gzip archive"):
            load(tmp_path / name)


def test_inner_content_problems_name_the_compressed_file(tmp_path):
    binary = tmp_path / "core.gz"
    binary.write_bytes(gzip.compress(BINARY))
    with pytest.raises(UnsupportedFile, match="core.gz: core: binary content"):
        load(binary)
    with pytest.raises(UnsupportedFile, match="backup.tar.gz: backup.tar: no loader for '.tar' files"):
        loader_for(tmp_path / "backup.tar.gz")  # decided by name, before anything is decompressed


def test_xhtml_with_an_xml_declaration_loads(tmp_path):
    path = tmp_path / "page.html"
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8"?>\n<html><head><title>Pumps</title></head>'
        "<body><p>Prime the pump first.</p></body></html>"
    )
    document = load(path)
    assert document.title == "Pumps" and document.blocks[0].text == "Prime the pump first."


def test_ingesting_a_messy_folder(tmp_path):
    folder = tmp_path / "doc"
    folder.mkdir()
    (folder / "README.Debian").write_text("Debian notes.\n\nThe service starts on boot.\n")
    (folder / "changelog.Debian.gz").write_bytes(gzip.compress(CHANGELOG.encode()))
    (folder / "copyright").write_text("Copyright 2024 The Ember authors.\nLicense: Apache-2.0\n")
    (folder / "logo.png").write_bytes(b"\x89PNG\r\n\x1a\n" + BINARY)
    (folder / "refcard.dvi").write_bytes(BINARY)
    (folder / "big.txt.gz").write_bytes(gzip.compress(b"x" * 300_000))
    settings = Settings(
        home=tmp_path / "home", database_url=f"sqlite:///{tmp_path / 'ember.db'}", sync_indexes=False
    )
    settings.max_file_mb = 0.2  # big.txt.gz is 300 kB once decompressed, well under that compressed
    service = EmberService(settings)
    try:
        report = service.ingest(str(folder), "debian")
        outcomes = {r.source_uri.rsplit("/", 1)[-1]: (r.outcome, r.reason) for r in report.results}
        titles = sorted(d.title for d in service.list_documents("debian"))
    finally:
        service.db.dispose()
    assert titles == ["README.Debian", "changelog.Debian", "copyright"]
    assert outcomes["logo.png"] == ("skipped", "logo.png: no loader for '.png' files")
    assert outcomes["refcard.dvi"][0] == "skipped" and "binary content" in outcomes["refcard.dvi"][1]
    assert outcomes["big.txt.gz"][0] == "failed" and "once decompressed" in outcomes["big.txt.gz"][1]
