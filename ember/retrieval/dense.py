"""FAISS index keyed by chunk id: exact inner product up to ``exact_limit`` vectors, IVF or HNSW above.

IndexIDMap2 gives deletes and updates by id. IVF supports ``remove_ids`` natively; HNSW does not, so a
delete on an HNSW index rebuilds the graph from its stored vectors. On a CUDA machine with faiss-gpu,
flat and IVF indexes are searched on the GPU.
"""

from __future__ import annotations

import math
from pathlib import Path

import faiss
import numpy as np


class DenseIndex:
    def __init__(self, dim: int, exact_limit: int = 200_000, approx_kind: str = "ivf") -> None:
        if approx_kind not in ("ivf", "hnsw"):
            raise ValueError(f"approx_kind must be 'ivf' or 'hnsw', got {approx_kind!r}")
        self.dim, self.exact_limit, self.approx_kind = dim, exact_limit, approx_kind
        self.index = faiss.IndexIDMap2(faiss.IndexFlatIP(dim))
        self.nprobe = 16
        self._gpu_index = None

    @property
    def kind(self) -> str:
        inner = faiss.downcast_index(self.index.index)
        if isinstance(inner, faiss.IndexIVF):
            return "ivf"
        return "hnsw" if isinstance(inner, faiss.IndexHNSW) else "flat"

    def __len__(self) -> int:
        return int(self.index.ntotal)

    def upsert(self, chunk_ids: np.ndarray, vectors: np.ndarray) -> None:
        ids = np.asarray(chunk_ids, dtype=np.int64)
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.shape != (len(ids), self.dim):
            raise ValueError(f"vectors have shape {vectors.shape}, expected ({len(ids)}, {self.dim})")
        self.delete(ids)
        if self.kind == "flat" and len(self) + len(ids) > self.exact_limit:
            old_ids, old_vectors = self._all_vectors()
            ids = np.concatenate([old_ids, ids])
            vectors = np.concatenate([old_vectors, vectors])
            self.index = self._approximate(vectors)
        self.index.add_with_ids(vectors, ids)
        self._gpu_index = None

    def delete(self, chunk_ids: np.ndarray) -> None:
        ids = np.asarray(chunk_ids, dtype=np.int64)
        if len(self) == 0 or len(ids) == 0:
            return
        if self.kind == "hnsw":
            all_ids, vectors = self._all_vectors()
            keep = ~np.isin(all_ids, ids)
            if keep.all():
                return
            self.index = self._approximate(vectors[keep])
            self.index.add_with_ids(vectors[keep], all_ids[keep])
        else:
            self.index.remove_ids(ids)
        self._gpu_index = None

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(chunk_ids, scores) each of shape (n_queries, k'); missing slots have id -1."""
        if len(self) == 0:
            return np.full((len(queries), 0), -1, dtype=np.int64), np.zeros((len(queries), 0))
        k = min(k, len(self))
        inner = faiss.downcast_index(self.index.index)
        if isinstance(inner, faiss.IndexIVF):
            inner.nprobe = self.nprobe
        scores, ids = self._searcher().search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return ids, scores

    def _searcher(self):
        if self._gpu_index is None and self.kind != "hnsw" and _gpu_count() > 0:
            self._gpu_index = faiss.index_cpu_to_all_gpus(self.index)
        return self.index if self._gpu_index is None else self._gpu_index

    def _all_vectors(self) -> tuple[np.ndarray, np.ndarray]:
        ids = faiss.vector_to_array(self.index.id_map).astype(np.int64)
        # Positions in the wrapped index follow id_map order, so one bulk reconstruct recovers every vector.
        return ids, self.index.index.reconstruct_n(0, len(ids))

    def _approximate(self, training: np.ndarray) -> faiss.IndexIDMap2:
        if self.approx_kind == "hnsw":
            inner = faiss.IndexHNSWFlat(self.dim, 32, faiss.METRIC_INNER_PRODUCT)
            inner.hnsw.efSearch = 64
        else:
            # ~4·sqrt(n) lists, but at least 39 training points per list as k-means wants.
            nlist = max(1, min(int(4 * math.sqrt(len(training))), len(training) // 39))
            quantizer = faiss.IndexFlatIP(self.dim)
            inner = faiss.IndexIVFFlat(quantizer, self.dim, nlist, faiss.METRIC_INNER_PRODUCT)
            inner.train(training)
        return faiss.IndexIDMap2(inner)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    @classmethod
    def load(cls, path: Path, exact_limit: int, approx_kind: str) -> DenseIndex:
        dense = cls.__new__(cls)
        dense.exact_limit, dense.approx_kind, dense.nprobe, dense._gpu_index = (
            exact_limit,
            approx_kind,
            16,
            None,
        )
        dense.index = faiss.read_index(str(path))
        dense.dim = dense.index.d
        return dense


def _gpu_count() -> int:
    return faiss.get_num_gpus() if hasattr(faiss, "get_num_gpus") else 0
