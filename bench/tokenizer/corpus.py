"""Build the benchmark corpus from real text installed on this machine: package docs, docstrings and
sources under site-packages, Debian documentation, and pydoc's topics. Every 50th file is held out."""

from __future__ import annotations

import gzip
import hashlib
import sys
import sysconfig
from pathlib import Path

SUFFIXES = {".py", ".md", ".rst", ".txt"}
HELD_OUT_EVERY = 50


def _candidate_files() -> list[Path]:
    roots = [Path(sysconfig.get_paths()["purelib"]), Path("/usr/share/doc")]
    files: list[Path] = []
    for root in roots:
        if root.is_dir():
            files.extend(
                p for p in root.rglob("*") if p.is_file() and (p.suffix in SUFFIXES or p.suffix == ".gz")
            )
    import pydoc_data.topics

    files.append(Path(pydoc_data.topics.__file__))
    # hashed order mixes the sources (Debian changelogs, package docs, code) instead of taking them in turn
    return sorted(files, key=lambda p: hashlib.md5(str(p).encode()).hexdigest())


def _read(path: Path) -> str:
    try:
        raw = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    except (OSError, EOFError, gzip.BadGzipFile):
        return ""
    if b"\0" in raw[:8192]:
        return ""
    return raw.decode("utf-8", errors="replace")


def build_corpus(train_bytes: int, held_out_bytes: int) -> tuple[list[str], list[str]]:
    """(training texts, held-out texts), each filled up to its byte budget."""
    train: list[str] = []
    held: list[str] = []
    train_size = held_size = 0
    for index, path in enumerate(_candidate_files()):
        if train_size >= train_bytes and held_size >= held_out_bytes:
            break
        to_held_out = index % HELD_OUT_EVERY == 0
        if (to_held_out and held_size >= held_out_bytes) or (not to_held_out and train_size >= train_bytes):
            continue
        text = _read(path)
        if not text.strip():
            continue
        size = len(text.encode("utf-8"))
        if to_held_out:
            held.append(text)
            held_size += size
        else:
            train.append(text)
            train_size += size
    if train_size < train_bytes:
        print(f"note: only {train_size / 1e6:.1f} MB of training text found", file=sys.stderr)
    return train, held
