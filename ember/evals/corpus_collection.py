"""A BEIR corpus (``_id``, title, text per line) as a collection: one Markdown file per document, named
after its ``_id`` so that a QA item's relevant_ids can be found among retrieved and prompted chunks."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from ember.evals.jsonl import read_jsonl

if TYPE_CHECKING:
    from ember.platform.service import EmberService
    from ember.platform.types import IngestReport


def ingest_corpus(service: EmberService, corpus: Path, collection: str, folder: Path) -> IngestReport:
    """Write the corpus under ``folder`` (the title as the heading) and ingest that folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, row in enumerate(read_jsonl(corpus), 1):
        if "_id" not in row or "text" not in row:
            raise ValueError(f"{corpus}:{number}: every document needs '_id' and 'text'")
        text = f"# {row.get('title', '')}\n\n{row['text']}\n"
        (folder / f"{quote(str(row['_id']), safe='')}.md").write_text(text, encoding="utf-8")
    return service.ingest(str(folder), collection)


def document_keys(service: EmberService, collection: str) -> dict[int, set[str]]:
    """Each document id → the names a relevant_ids entry may use: its corpus ``_id`` (the file name
    written above, or any file's stem) and its title."""
    return {
        doc.id: {unquote(Path(unquote(doc.source_uri)).stem), doc.title}
        for doc in service.list_documents(collection)
    }
