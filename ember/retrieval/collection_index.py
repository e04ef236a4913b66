"""The BM25 + FAISS indexes of one collection, with a manifest, saved atomically and loaded lazily.

Layout under ``EMBER_HOME/indexes/<collection>/``::

    manifest.json        model name, dim, tokenizer, chunk ids, versions, and which generation is live
    gen-000007/          bm25.npz, dense.faiss, records.jsonl

A save writes a complete new generation directory, then atomically replaces ``manifest.json`` to point
at it, then deletes older generations. A crash at any point leaves the manifest naming a complete
generation, so the previous index stays loadable.
"""

from __future__ import annotations

import dataclasses
import json
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
    ) -> None:
        self.directory = Path(directory)
        self.name = self.directory.name
        self.embedding_model = embedding_model
        self._exact_limit, self._approx_kind = exact_limit, approx_kind
        self.loaded_stamp = self.manifest_stamp()
        self._manifest = self._read_manifest()
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

    def manifest_stamp(self) -> int | None:
        """mtime of the manifest on disk: changes when any process saves a new generation."""
        try:
            return (self.directory / MANIFEST).stat().st_mtime_ns
        except FileNotFoundError:
            return None

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
            self._records = {}
            gen = self._generation()
            if gen:
                with open(gen / "records.jsonl", encoding="utf-8") as f:
                    for line in f:
                        record = ChunkRecord(**json.loads(line))
                        self._records[record.chunk_id] = record
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

    def save(self) -> None:
        """Write a new generation, then switch the manifest to it atomically (see module docstring)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        number = int(self._manifest["generation"].split("-")[1]) + 1 if self._manifest else 1
        final = self.directory / f"gen-{number:06d}"
        staging = self.directory / f".staging-{number:06d}-{time.time_ns()}"
        staging.mkdir()
        self.bm25.save(staging / "bm25.npz")
        self.dense.save(staging / "dense.faiss")
        with open(staging / "records.jsonl", "w", encoding="utf-8") as f:
            for record in self.records.values():
                f.write(json.dumps(dataclasses.asdict(record), ensure_ascii=False) + "\n")
        fsync_dir(staging)
        if final.exists():  # left over by a crash after the rename but before the manifest switch
            shutil.rmtree(final)
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
            "chunk_ids": sorted(self.records),
        }
        write_text_atomic(self.directory / MANIFEST, json.dumps(manifest))
        self._manifest = manifest
        self.dirty = False
        self.loaded_stamp = self.manifest_stamp()
        for old in self.directory.iterdir():
            if old != final and (old.name.startswith("gen-") or old.name.startswith(".staging-")):
                shutil.rmtree(old, ignore_errors=True)

    def _read_manifest(self) -> dict | None:
        path = self.directory / MANIFEST
        if not path.exists():
            return None
        manifest = json.loads(path.read_text(encoding="utf-8"))
        if manifest.get("format") != FORMAT_VERSION:
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
