"""Token shards: flat uint16/uint32 memmaps of BOS-prefixed documents, described by index.json.

A data directory holds ``index.json`` and, per split, files ``<split>_<n>.bin``. The index lists each
shard's file, token count and document count, so a missing or truncated file is found before training.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

INDEX_FILE = "index.json"
SPLITS = ("train", "val")


class ShardError(ValueError):
    """A data directory that cannot be read: the message names the file and what is wrong."""


@dataclass(frozen=True)
class Shard:
    path: Path
    tokens: np.ndarray  # memmap, 1-D
    doc_starts: np.ndarray  # int64 offsets of each document's BOS


def token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16 if vocab_size <= 1 << 16 else np.uint32)


class ShardWriter:
    """Append documents (token id lists, BOS first) to one split's shards of ``shard_tokens`` tokens."""

    def __init__(self, directory: Path, split: str, dtype: np.dtype, shard_tokens: int = 1 << 26) -> None:
        self.directory, self.split, self.dtype, self.shard_tokens = directory, split, dtype, shard_tokens
        self.entries: list[dict] = []
        self._parts: list[np.ndarray] = []
        self._size = 0
        self._docs = 0

    def add(self, ids: list[int]) -> None:
        self._parts.append(np.asarray(ids, dtype=self.dtype))
        self._size += len(ids)
        self._docs += 1
        if self._size >= self.shard_tokens:
            self._flush()

    def close(self) -> list[dict]:
        if self._parts:
            self._flush()
        return self.entries

    def _flush(self) -> None:
        name = f"{self.split}_{len(self.entries):04d}.bin"
        data = np.concatenate(self._parts)
        data.tofile(self.directory / name)
        self.entries.append({"file": name, "tokens": int(data.size), "documents": self._docs})
        self._parts, self._size, self._docs = [], 0, 0


def write_index(directory: Path, index: dict) -> None:
    (directory / INDEX_FILE).write_text(json.dumps(index, indent=2) + "\n")


def read_index(directory: Path) -> dict:
    path = Path(directory) / INDEX_FILE
    if not path.is_file():
        raise ShardError(f"{path}: no shard index (run `ember train prepare` to make the data directory)")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ShardError(f"{path}: not valid JSON ({error})") from None


def open_split(directory: Path, split: str) -> list[Shard]:
    """Memory-map every shard of ``split``, checking each file against the index."""
    directory = Path(directory)
    index = read_index(directory)
    dtype = np.dtype(index["dtype"])
    entries = index["splits"].get(split) or []
    if not entries:
        raise ShardError(f"{directory / INDEX_FILE}: the {split!r} split has no shards")
    bos = index["bos_id"]
    shards = []
    for entry in entries:
        path = directory / entry["file"]
        if not path.is_file():
            raise ShardError(f"{path}: shard listed in {INDEX_FILE} is missing")
        expected = entry["tokens"] * dtype.itemsize
        if path.stat().st_size != expected:
            raise ShardError(
                f"{path}: {path.stat().st_size} bytes, the index says {expected} "
                f"({entry['tokens']} {dtype.name} tokens); the file is truncated or from another run"
            )
        tokens = np.memmap(path, dtype=dtype, mode="r")
        starts = np.flatnonzero(tokens == bos)
        if starts.size != entry["documents"] or starts[0] != 0:
            raise ShardError(
                f"{path}: {starts.size} documents start with BOS, the index says {entry['documents']}"
            )
        shards.append(Shard(path, tokens, starts))
    return shards
