import json

import pytest

from ember.platform.ingest.document import LoaderError, UnsupportedFile
from ember.platform.ingest.loaders import loader_for
from tests.platform.files import NOISY_HTML, make_docx, make_pdf


def load(path, fields=()):
    return loader_for(path, fields)(path, path.read_bytes())


def test_pdf_keeps_page_numbers(tmp_path):
    pdf = make_pdf(tmp_path / "notes.pdf", ["Gradient descent on page one.", "Momentum lives on page two."])
    doc = load(pdf)
    assert doc.title == "Lecture notes"
    assert doc.mime_type == "application/pdf"
    assert [(b.page, b.text) for b in doc.blocks] == [
        (1, "Gradient descent on page one."),
        (2, "Momentum lives on page two."),
    ]


def test_docx_headings_become_structure(tmp_path):
    doc = load(make_docx(tmp_path / "manual.docx"))
    assert doc.title == "Operating Manual"
    by_text = {b.text: b for b in doc.blocks}
    assert by_text["Replace the filter every 300 operating hours."].heading_path == (
        "Operating Manual",
        "Maintenance",
    )
    assert by_text["Seal | 1200 hours"].heading_path == ("Operating Manual", "Maintenance")


def test_html_drops_navigation_scripts_and_styles(tmp_path):
    path = tmp_path / "kettle.html"
    path.write_text(NOISY_HTML)
    doc = load(path)
    text = "\n".join(b.text for b in doc.blocks)
    for noise in (
        "trackingScriptMarker",
        "NavigationMarkerShop",
        "HeaderBannerMarker",
        "SidebarMarker",
        "FooterMarker",
        "InlineScriptMarker",
        "color: red",
    ):
        assert noise not in text
    assert doc.title == "Kettle guide"
    descale = next(b for b in doc.blocks if b.text.startswith("Descale"))
    assert descale.heading_path == ("Electric kettle", "Descaling")
    assert "Unplug the kettle first." in text


def test_json_keeps_key_paths_and_selects_fields(tmp_path):
    path = tmp_path / "catalog.json"
    path.write_text(
        json.dumps(
            {
                "title": "Parts catalog",
                "items": [
                    {"name": "Valve", "description": "Controls flow", "price": 12},
                    {"name": "Seal", "description": "Stops leaks"},
                ],
            }
        )
    )
    doc = load(path)
    assert doc.title == "Parts catalog"
    valve = next(b for b in doc.blocks if "Controls flow" in b.text)
    assert valve.heading_path == ("items", "Valve")
    assert valve.text == "name: Valve\ndescription: Controls flow"
    only = load(path, ["items.*.description"])
    assert [b.text for b in only.blocks] == ["description: Controls flow", "description: Stops leaks"]


def test_jsonl_labels_each_record(tmp_path):
    path = tmp_path / "faq.jsonl"
    path.write_text('{"title": "Reset", "answer": "Hold the button"}\n\n{"answer": "Call support"}\n')
    doc = load(path)
    assert [(b.heading_path, b.text) for b in doc.blocks] == [
        (("Reset",), "title: Reset\nanswer: Hold the button"),
        (("line 3",), "answer: Call support"),
    ]


def test_markdown_headings_and_fenced_code(tmp_path):
    path = tmp_path / "guide.md"
    path.write_text("# Guide\n\nIntro.\n\n## Setup\n\n```sh\npip install x\n\npip install y\n```\n\nDone.\n")
    doc = load(path)
    assert doc.title == "Guide"
    code = next(b for b in doc.blocks if b.text.startswith("```"))
    assert "pip install x\n\npip install y" in code.text
    assert code.heading_path == ("Guide", "Setup")


def test_text_detects_numbered_headings(tmp_path):
    path = tmp_path / "chapter.txt"
    path.write_text("2.1 — Training Data\n\nData is filtered.\n\n2.2 — Tokenization\n\nBPE merges pairs.\n")
    doc = load(path)
    assert [(b.heading_path, b.is_heading) for b in doc.blocks] == [
        (("2.1 — Training Data",), True),
        (("2.1 — Training Data",), False),
        (("2.2 — Tokenization",), True),
        (("2.2 — Tokenization",), False),
    ]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "broken.pdf",
            b"%PDF-1.4\n1 0 obj << /Type /Catalog >>\ntrailer garbage",
            "corrupt or unreadable PDF",
        ),
        ("latin.txt", "caf\u00e9".encode("latin-1"), "not valid UTF-8 (byte 0xe9 at offset 3)"),
        ("empty.md", b"", "file is empty (0 bytes)"),
        ("blank.txt", b"  \n\n  ", "no text"),
        ("bad.json", b'{"a": ', "invalid JSON at line 1"),
        ("bad.jsonl", b'{"a": "b"}\n{nope}\n', "line 2 is not valid JSON"),
        ("broken.docx", b"PK\x03\x04 not really a zip", "corrupt or unreadable DOCX"),
    ],
)
def test_bad_content_fails_with_a_reason_naming_the_file(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(LoaderError) as error:
        load(path)
    assert name in str(error.value) and message in str(error.value)


def test_binary_and_unknown_types_are_skipped(tmp_path):
    binary = tmp_path / "image.txt"
    binary.write_bytes(b"\x89PNG\x00\x00\x01")
    with pytest.raises(UnsupportedFile, match="binary content"):
        load(binary)
    with pytest.raises(UnsupportedFile, match="no loader for '.exe'"):
        loader_for(tmp_path / "setup.exe")
