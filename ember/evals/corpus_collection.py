"""A JSON Lines corpus (title, text per row) ingested as a collection, one Markdown file per document."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from ember.evals.jsonl import read_jsonl

if TYPE_CHECKING:
    from ember.platform.service import EmberService
    from ember.platform.types import IngestReport


def ingest_corpus(service: EmberService, corpus: Path, collection: str, folder: Path) -> IngestReport:
    """Write the corpus under ``folder`` (the title as the heading) and ingest that folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for number, row in enumerate(read_jsonl(corpus)):
        text = f"# {row['title']}\n\n{row['text']}\n"
        (folder / f"{number:05d}.md").write_text(text, encoding="utf-8")
    return service.ingest(str(folder), collection)
