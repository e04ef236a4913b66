"""PDF (page numbers kept) and DOCX (heading styles kept)."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

from ember.platform.ingest.document import Block, LoadedDocument, LoaderError

_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n+")
_HEADING_STYLE = re.compile(r"^(?:Heading\s*(\d)|Title)$", re.IGNORECASE)


def load_pdf(path: Path, data: bytes) -> LoadedDocument:
    from pypdf import PdfReader
    from pypdf.errors import PdfReadError

    if not data:
        raise LoaderError(f"{path.name}: file is empty (0 bytes)")
    try:
        reader = PdfReader(io.BytesIO(data))
        if reader.is_encrypted:
            raise LoaderError(f"{path.name}: PDF is encrypted")
        pages = [page.extract_text() or "" for page in reader.pages]
        meta_title = (reader.metadata.title if reader.metadata else None) or ""
    except (PdfReadError, ValueError, KeyError, TypeError, OSError) as exc:
        raise LoaderError(f"{path.name}: corrupt or unreadable PDF ({exc})") from exc
    blocks = [
        Block(paragraph.strip(), page=number)
        for number, text in enumerate(pages, start=1)
        for paragraph in _PARAGRAPH_BREAK.split(text)
        if paragraph.strip()
    ]
    if not blocks:
        raise LoaderError(f"{path.name}: PDF has no extractable text (scanned images need OCR)")
    return LoadedDocument(
        title=meta_title.strip() or path.stem,
        mime_type="application/pdf",
        blocks=blocks,
        metadata={"pages": len(pages)},
    )


def load_docx(path: Path, data: bytes) -> LoadedDocument:
    import docx
    from docx.opc.exceptions import PackageNotFoundError

    if not data:
        raise LoaderError(f"{path.name}: file is empty (0 bytes)")
    try:
        document = docx.Document(io.BytesIO(data))
    except (PackageNotFoundError, zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise LoaderError(f"{path.name}: corrupt or unreadable DOCX ({exc})") from exc
    blocks: list[Block] = []
    stack: list[tuple[int, str]] = []
    title = (document.core_properties.title or "").strip()
    for paragraph in document.paragraphs:
        text = paragraph.text.strip()
        if not text:
            continue
        style = _HEADING_STYLE.match(paragraph.style.name if paragraph.style is not None else "")
        if style:
            level = int(style.group(1) or 0)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
            title = title or text
        blocks.append(Block(text, tuple(t for _, t in stack), is_heading=bool(style)))
    for table in document.tables:
        for row in table.rows:
            cells = [cell.text.strip() for cell in row.cells if cell.text.strip()]
            if cells:
                blocks.append(Block(" | ".join(cells), tuple(t for _, t in stack)))
    if not blocks:
        raise LoaderError(f"{path.name}: DOCX has no text")
    return LoadedDocument(
        title=title or path.stem,
        mime_type=("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
        blocks=blocks,
    )
