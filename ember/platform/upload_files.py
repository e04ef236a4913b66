"""Uploaded files on disk: saved under <uploads root>/<collection>/<file name>, both names made safe."""

from __future__ import annotations

import re
from pathlib import Path


def safe_filename(name: str) -> str:
    """The base name with anything outside [A-Za-z0-9._-] replaced; never a path, never hidden."""
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(name or "").name).lstrip(".")
    return base or "upload.txt"


def save_upload(root: Path, collection: str, filename: str, content: bytes) -> Path:
    """Write ``content`` for ``collection`` (a second upload with the same name replaces the first)."""
    folder = root / safe_filename(collection)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe_filename(filename)
    path.write_bytes(content)
    return path
