"""The BM25 + FAISS indexes of one collection, with a manifest, saved atomically and loaded lazily.

Layout under ``EMBER_HOME/indexes/<collection>/``::

    manifest.json                 model name, dim, tokenizer, chunk ids, versions, the SQL content
                                  revision the index reflects, and which generation is live
    gen-000007-4242-9f3a1c/       bm25.npz, dense.faiss, records.jsonl

A save writes a complete new generation directory under a name no other writer can pick (number, pid,
random suffix), then atomically replaces ``manifest.json`` to point at it, then deletes all but the live
and the previous generation (a reader in another process may still be loading the previous one). A
crash at any point leaves the manifest naming a complete generation. Saves expect the collection's
writer lock (``IndexStore.writer``) to be held: one writer at a time.
"""

from __future__ import annotations

import dataclasses
import json
import os
import secrets
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path

import faiss
import numpy as np

from ember.retrieval.atomic import fsync_dir, write_text_atomic
from ember.retrieval.bm25 import BM25
from ember.retrieval.dense import DenseIndex
from ember.retrieval.embedder import DEFAULT_EMBEDDING_MODEL, Embedder
from ember.retrieval.terms import TermSplitter
from ember.retrieval.types import ChunkRecord

FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class IndexModelMismatch(RuntimeError):
    """The index was built with another embedding model (or dimension) than the one requested."""


def indexed_text(record: ChunkRecord) -> str:
    """What both retrievers see: title and heading path carry much of a chunk's meaning."""
    return "\n".join(part for part in (record.title, record.heading_path, record.text) if part)


class CollectionIndex:
    def __init__(
        self,
        directory: Path,
        embedding_model: str = DEFAULT_EMBEDDING_MODEL,
        tokenizer: TermSplitter | None = None,
        exact_limit: int = 200_000,
        approx_kind: str = "ivf",
        start_empty: bool = False,
    ) -> None:
        """``start_empty`` ignores the saved generation (a rebuild, possibly with another model); the
        next save replaces it."""
        self.directory = Path(directory)
        self.name = self.directory.name
        self.embedding_model = embedding_model
        self._exact_limit, self._approx_kind = exact_limit, approx_kind
        self.loaded_stamp = self.manifest_stamp()
        self._manifest = None if start_empty else self._read_manifest()
        if self._manifest:
            self._check_model(embedding_model, self._manifest["dim"])
            self.tokenizer = TermSplitter(**self._manifest["tokenizer"])
        else:
            self.tokenizer = tokenizer or TermSplitter()
        self._bm25: BM25 | None = None
        self._dense: DenseIndex | None = None
        self._records: dict[int, ChunkRecord] | None = None
        self._embedder: Embedder | None = None
        self.dirty = False  # changes not yet saved

    # -- lazy parts -------------------------------------------------------------------------------

    def manifest_stamp(self) -> tuple[int, int, int] | None:
        """Identity of the manifest file on disk: every save replaces it with a new file, so this changes
        when any process saves a new generation (one stat, cheap enough for every search)."""
        try:
            stat = (self.directory / MANIFEST).stat()
        except FileNotFoundError:
            return None
        return stat.st_ino, stat.st_mtime_ns, stat.st_size

    @property
    def content_revision(self) -> int:
        """The SQL content revision of the collection that this index reflects (0: never saved)."""
        return self._manifest.get("content_revision", 0) if self._manifest else 0

    @property
    def exists(self) -> bool:
        return self._manifest is not None

    def _generation(self) -> Path | None:
        return self.directory / self._manifest["generation"] if self._manifest else None

    @property
    def bm25(self) -> BM25:
        if self._bm25 is None:
            gen = self._generation()
            self._bm25 = BM25.load(gen / "bm25.npz") if gen else BM25()
        return self._bm25

    @property
    def dense(self) -> DenseIndex:
        if self._dense is None:
            gen = self._generation()
            if gen:
                self._dense = DenseIndex.load(gen / "dense.faiss", self._exact_limit, self._approx_kind)
            else:
                self._dense = DenseIndex(self.embedder.dim, self._exact_limit, self._approx_kind)
        return self._dense

    @property
    def records(self) -> dict[int, ChunkRecord]:
        if self._records is None:
            # Built aside and published whole: concurrent searches must never see a half-read map.
            records: dict[int, ChunkRecord] = {}
            gen = self._generation()
            if gen:
                with open(gen / "records.jsonl", encoding="utf-8") as f:
                    for line in f:
                        record = ChunkRecord(**json.loads(line))
                        records[record.chunk_id] = record
            self._records = records
        return self._records

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            self._embedder = Embedder(self.embedding_model)
            if self._manifest:
                self._check_model(self.embedding_model, self._embedder.dim)
        return self._embedder

    def chunk_ids(self) -> set[int]:
        """Indexed chunk ids, read from the manifest alone when nothing is loaded yet (cheap drift checks)."""
        if self._records is None and self._manifest:
            return set(self._manifest["chunk_ids"])
        return set(self.records)

    def __len__(self) -> int:
        return len(self.chunk_ids())

    # -- updates ----------------------------------------------------------------------------------

    def upsert(
        self, records: Sequence[ChunkRecord], vectors: np.ndarray | None = None, progress: bool = False
    ) -> None:
        """Add or replace chunks in both indexes; ``vectors`` skips embedding (precomputed by the caller)."""
        if not records:
            return
        texts = [indexed_text(r) for r in records]
        if vectors is None:
            vectors = self.embedder.encode(texts, progress=progress)
        dim = self._manifest["dim"] if self._manifest else vectors.shape[1]
        if vectors.shape[1] != dim:
            raise IndexModelMismatch(
                f"vectors of dimension {vectors.shape[1]} do not fit index '{self.name}' (dimension {dim}); "
                f"run `ember index rebuild -c {self.name}`"
            )
        ids = np.array([r.chunk_id for r in records], dtype=np.int64)
        if self._dense is None and not self._manifest:
            self._dense = DenseIndex(vectors.shape[1], self._exact_limit, self._approx_kind)
        self.bm25.upsert(zip(ids.tolist(), map(self.tokenizer, texts), strict=True))
        self.dense.upsert(ids, vectors)
        self.records.update({r.chunk_id: r for r in records})
        self.dirty = True

    def delete(self, chunk_ids: Iterable[int]) -> None:
        ids = [int(c) for c in chunk_ids if int(c) in self.records]
        if not ids:
            return
        self.bm25.delete(ids)
        self.dense.delete(np.array(ids, dtype=np.int64))
        for cid in ids:
            del self.records[cid]
        self.dirty = True

    # -- persistence ------------------------------------------------------------------------------

    def save(self, content_revision: int | None = None) -> None:
        """Write a new generation, then switch the manifest to it atomically (see module docstring).

        ``content_revision``: the SQL revision this index now reflects (default: the one it had)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        live = self._read_manifest(check_format=False)  # what is on disk, even for a start_empty index
        number = int(live["generation"].split("-")[1]) + 1 if live else 1
        name = f"{number:06d}-{os.getpid()}-{secrets.token_hex(3)}"
        final = self.directory / f"gen-{name}"
        staging = self.directory / f".staging-{name}"
        staging.mkdir()  # fails rather than share a directory with another writer
        self.bm25.save(staging / "bm25.npz")
        self.dense.save(staging / "dense.faiss")
        with open(staging / "records.jsonl", "w", encoding="utf-8") as f:
            for record in self.records.values():
                f.write(json.dumps(dataclasses.asdict(record), ensure_ascii=False) + "\n")
        fsync_dir(staging)
        staging.rename(final)
        manifest = {
            "format": FORMAT_VERSION,
            "collection": self.name,
            "generation": final.name,
            "embedding_model": self.embedding_model,
            "dim": self.dense.dim,
            "tokenizer": self.tokenizer.config(),
            "dense_kind": self.dense.kind,
            "versions": {"faiss": faiss.__version__, "numpy": np.__version__},
            "saved_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "content_revision": self.content_revision if content_revision is None else content_revision,
            "chunk_ids": sorted(self.records),
        }
        write_text_atomic(self.directory / MANIFEST, json.dumps(manifest))
        self._manifest = manifest
        self.dirty = False
        self.loaded_stamp = self.manifest_stamp()
        keep = {final.name, live["generation"] if live else None}
        for old in self.directory.iterdir():  # under the writer lock, other staging folders are a crash's
            if old.name not in keep and (old.name.startswith("gen-") or old.name.startswith(".staging-")):
                shutil.rmtree(old, ignore_errors=True)

    def _read_manifest(self, check_format: bool = True) -> dict | None:
        path = self.directory / MANIFEST
        if not path.exists():
            return None
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if check_format and manifest.get("format") != FORMAT_VERSION:
            raise IndexModelMismatch(
                f"index '{self.name}' has format {manifest.get('format')}, Ember reads {FORMAT_VERSION}; "
                f"run `ember index rebuild -c {self.name}`"
            )
        return manifest

    def _check_model(self, model: str, dim: int) -> None:
        built_with, built_dim = self._manifest["embedding_model"], self._manifest["dim"]
        if model != built_with or dim != built_dim:
            raise IndexModelMismatch(
                f"index '{self.name}' was built with embedding model {built_with!r} (dim {built_dim}), "
                f"but {model!r} (dim {dim}) was requested; run `ember index rebuild -c {self.name}` "
                "to re-embed the collection with the new model"
            )
