"""Files whose extension names no loader: loaded as plain text when their first bytes are text.

Real document folders are full of these (``README.Debian``, ``CHANGES``, ``foo.conf``). The check is
strict on purpose: no NUL bytes and almost every character printable, so that a binary file is skipped
rather than indexed as noise. Text in a legacy 8-bit encoding counts as text: it then fails with the
text loader's "not valid UTF-8" reason, like a ``.txt`` file would, instead of passing for binary.
"""

from __future__ import annotations

import codecs
from pathlib import Path

from ember.platform.ingest.document import LoadedDocument, UnsupportedFile
from ember.platform.ingest.loaders.text import load_text

SNIFF_BYTES = 1024
_MIN_PRINTABLE = 0.95
_WHITESPACE = frozenset("\t\n\r\f\v")


def looks_like_text(head: bytes) -> bool:
    """Whether the first bytes of a file read as text: no NULs, and almost all printable as UTF-8 or,
    failing that, as Latin-1 (whose C0 and C1 control ranges are where binary bytes land)."""
    if head.startswith((b"\xff\xfe", b"\xfe\xff")):
        return True
    if b"\x00" in head:
        return False
    try:  # incremental, so that a character cut at the end of the sample is not an error
        sample = codecs.getincrementaldecoder("utf-8-sig")().decode(head, final=False)
    except UnicodeDecodeError:
        sample = head.decode("latin-1")
    if not sample:
        return False
    printable = sum(1 for ch in sample if ch.isprintable() or ch in _WHITESPACE)
    return printable / len(sample) >= _MIN_PRINTABLE


def load_sniffed_text(path: Path, data: bytes) -> LoadedDocument:
    """Plain text for a file of unknown type whose content is text; binary content is skipped."""
    if data and not looks_like_text(data[:SNIFF_BYTES]):
        kind = f"'{path.suffix}'" if path.suffix else "extension-less"
        raise UnsupportedFile(f"{path.name}: binary content, and no loader for {kind} files")
    loaded = load_text(path, data)
    loaded.title = path.name  # "README.Debian": the part after the dot is not a type here
    return loaded
