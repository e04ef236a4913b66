"""The texts bits per byte is measured on: files (paths, folders, globs) or a collection's chunks."""

from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ember.platform.chunks import read_chunks
from ember.platform.errors import InvalidInputError

if TYPE_CHECKING:
    from ember.platform.service import EmberService

TEXT_SUFFIXES = (".txt", ".md")  # what a folder contributes; a file named outright is read whatever its name


@dataclass(frozen=True)
class ScoredText:
    name: str  # a file path, or "collection/title#chunk id"
    text: str


def texts_from_files(patterns: list[str]) -> list[ScoredText]:
    """Each pattern is a file, a folder (its .txt and .md files, recursively) or a glob (``**`` allowed)."""
    paths: list[Path] = []
    for pattern in patterns:
        matches = sorted(glob.glob(pattern, recursive=True)) if glob.has_magic(pattern) else [pattern]
        found = [Path(m) for m in matches if Path(m).exists()]
        if not found:
            raise InvalidInputError(f"{pattern}: no such file, folder or matching files")
        for path in found:
            if path.is_dir():
                paths += sorted(p for p in path.rglob("*") if p.is_file() and p.suffix in TEXT_SUFFIXES)
            else:
                paths.append(path)
    texts = []
    for path in dict.fromkeys(paths):  # a file matched twice is scored once
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
        if text.strip():
            texts.append(ScoredText(str(path), text))
    if not texts:
        raise InvalidInputError(f"no text to score in {', '.join(patterns)}")
    return texts


def texts_from_collection(service: EmberService, collection: str) -> list[ScoredText]:
    """Every chunk of ``collection``, each scored alone (chunks overlap, so documents are not re-joined)."""
    texts = []
    for document in service.list_documents(collection):  # NotFoundError names an unknown collection
        if document.chunks:
            for hit in read_chunks(service.db, "document", document.id, around=document.chunks // 2):
                if hit.text.strip():
                    texts.append(ScoredText(f"{collection}/{document.title}#{hit.chunk_id}", hit.text))
    if not texts:
        raise InvalidInputError(f"collection '{collection}' holds no text to score")
    return texts
