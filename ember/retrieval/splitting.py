"""Splitting plain text into passages for indexing when no platform chunker is involved (eval corpora)."""

from __future__ import annotations


def split_passages(text: str, max_words: int = 200) -> list[str]:
    """Packs whole paragraphs up to ``max_words``; a longer paragraph is cut into word windows."""
    if max_words <= 0:
        raise ValueError(f"max_words must be positive, got {max_words}")
    passages: list[str] = []
    current: list[str] = []
    size = 0
    for paragraph in (p.strip() for p in text.split("\n\n")):
        if not paragraph:
            continue
        words = paragraph.split()
        if current and size + len(words) > max_words:
            passages.append("\n\n".join(current))
            current, size = [], 0
        if len(words) > max_words:
            passages.extend(" ".join(words[i : i + max_words]) for i in range(0, len(words), max_words))
            continue
        current.append(paragraph)
        size += len(words)
    if current:
        passages.append("\n\n".join(current))
    return passages
