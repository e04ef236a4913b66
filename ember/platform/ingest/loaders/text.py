"""Plain text and Markdown: paragraphs, with headings detected for structure."""

from __future__ import annotations

import re
from pathlib import Path

from ember.platform.ingest.document import Block, LoadedDocument, LoaderError, UnsupportedFile

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
_NUMBERED_HEADING = re.compile(r"^(\d+(?:\.\d+)*)\.?\s*[—–:.)-]?\s+\S")
_CHAPTER_HEADING = re.compile(r"^(chapter|part|section|appendix)\s+[\w.]+", re.IGNORECASE)
_ATX_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def decode_text(data: bytes, path: Path) -> str:
    """UTF-8 (with or without BOM) or UTF-16 with BOM; binaries are skipped, bad bytes fail the file."""
    if not data:
        raise LoaderError(f"{path.name}: file is empty (0 bytes)")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16").replace("\r\n", "\n")
    if b"\x00" in data[:8192]:
        raise UnsupportedFile(f"{path.name}: binary content (NUL bytes) in a text file")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise LoaderError(
            f"{path.name}: not valid UTF-8 (byte 0x{data[exc.start]:02x} at offset {exc.start})"
        ) from exc
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _heading_level(paragraph: str) -> int | None:
    """A standalone short line that looks like a section title, and its depth."""
    if "\n" in paragraph or len(paragraph) > 80 or paragraph[-1] in ".,;:!?":
        return None
    if match := _NUMBERED_HEADING.match(paragraph):
        return match.group(1).count(".") + 1
    if _CHAPTER_HEADING.match(paragraph):
        return 1
    letters = [c for c in paragraph if c.isalpha()]
    if len(letters) >= 4 and all(c.isupper() for c in letters):
        return 1
    return None


def _push_heading(stack: list[tuple[int, str]], level: int, title: str) -> None:
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, title))


def load_text(path: Path, data: bytes) -> LoadedDocument:
    text = decode_text(data, path)
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    for raw in _PARAGRAPH_BREAK.split(text):
        paragraph = raw.strip()
        if not paragraph:
            continue
        level = _heading_level(paragraph)
        if level is not None:
            _push_heading(stack, level, paragraph)
        path_now = tuple(title for _, title in stack)
        blocks.append(Block(paragraph, path_now, is_heading=level is not None))
    if not blocks:
        raise LoaderError(f"{path.name}: no text (only whitespace)")
    return LoadedDocument(title=path.stem, mime_type="text/plain", blocks=blocks)


def _markdown_paragraphs(text: str) -> list[str]:
    """Paragraphs and headings; a fenced code block stays whole even across blank lines."""
    out: list[str] = []
    current: list[str] = []
    in_fence = False

    def flush() -> None:
        if current and "".join(current).strip():
            out.append("\n".join(current).strip("\n"))
        current.clear()

    for line in text.split("\n"):
        if _FENCE.match(line):
            if not in_fence:
                flush()
            current.append(line)
            in_fence = not in_fence
            if not in_fence:
                flush()
            continue
        if in_fence:
            current.append(line)
        elif not line.strip():
            flush()
        elif _ATX_HEADING.match(line):
            flush()
            out.append(line.strip())
        else:
            current.append(line)
    flush()
    return out


def load_markdown(path: Path, data: bytes) -> LoadedDocument:
    text = decode_text(data, path)
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    title = None
    for paragraph in _markdown_paragraphs(text):
        heading = _ATX_HEADING.match(paragraph)
        if heading:
            level, heading_text = len(heading.group(1)), heading.group(2)
            _push_heading(stack, level, heading_text)
            title = title or (heading_text if level == 1 else None)
        blocks.append(Block(paragraph, tuple(t for _, t in stack), is_heading=bool(heading)))
    if not blocks:
        raise LoaderError(f"{path.name}: no text (only whitespace)")
    return LoadedDocument(title=title or path.stem, mime_type="text/markdown", blocks=blocks)
