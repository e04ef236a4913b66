"""Uploaded files on disk: <uploads root>/<collection>/<name key>/<file name>.

The key folder is a hash of the upload's name, so names that would read alike once made safe (报告.txt
and 笔记.txt) never share a file, and a second upload under the same name replaces the first (it is
the same document, updated). The file keeps the name as given, so its document's title shows it; a
name too long for the file system is shortened, and the key still tells it apart.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from pathlib import Path

MAX_NAME_BYTES = 200  # file systems take 255 bytes per name; what is left is room for tools' suffixes


def upload_name(name: str) -> str:
    """The base name as given, without separators, control characters or a leading dot."""
    base = re.split(r"[/\\]", name or "")[-1]
    base = "".join("_" if unicodedata.category(c) in ("Cc", "Cs") else c for c in base)
    return base.strip().lstrip(".").strip() or "upload.txt"


def shortened(name: str) -> str:
    """``name`` cut to MAX_NAME_BYTES of UTF-8, its extension kept."""
    if len(name.encode()) <= MAX_NAME_BYTES:
        return name
    suffix = Path(name).suffix if len(Path(name).suffix.encode()) <= 16 else ""
    room = MAX_NAME_BYTES - len(suffix.encode())
    stem = name[: len(name) - len(suffix)].encode()[:room].decode(errors="ignore")
    return stem + suffix


def safe_folder(name: str) -> str:
    """A collection's folder: anything outside [A-Za-z0-9._-] replaced; never a path, never hidden."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name or "").name).lstrip(".") or "_"


def save_upload(root: Path, collection: str, filename: str, content: bytes) -> Path:
    """Write ``content`` for ``collection`` (a second upload with the same name replaces the first)."""
    name = upload_name(filename)
    key = hashlib.sha256(name.encode()).hexdigest()[:16]
    folder = root / safe_folder(collection) / key
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / shortened(name)
    path.write_bytes(content)
    return path
