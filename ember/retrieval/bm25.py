"""Okapi BM25 over a sparse doc-term matrix, score-for-score equal to ``rank_bm25.BM25Okapi``.

Rows are chunks, columns are terms, values are raw term frequencies. Upserts append rows and
deletes tombstone them (the row is zeroed and marked dead), so neither touches the rest of the
matrix; the weighted matrix that queries use is recomputed lazily, vectorised, after a change, and
``compact`` drops the dead rows before a save.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import scipy.sparse as sp


class BM25:
    def __init__(self, k1: float = 1.5, b: float = 0.75, epsilon: float = 0.25) -> None:
        self.k1, self.b, self.epsilon = k1, b, epsilon
        self.vocab: dict[str, int] = {}
        self.ids = np.zeros(0, dtype=np.int64)
        self.alive = np.zeros(0, dtype=bool)
        self.tf = sp.csr_matrix((0, 0), dtype=np.float32)
        self._row_of: dict[int, int] = {}
        self._weights: sp.csc_matrix | None = None
        self._idf: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self._row_of)

    def chunk_ids(self) -> list[int]:
        return list(self._row_of)

    def upsert(self, items: Iterable[tuple[int, Sequence[str]]]) -> None:
        """Add or replace chunks given as (chunk_id, tokens)."""
        items = list(items)
        if not items:
            return
        self.delete([cid for cid, _ in items])
        rows, cols, vals = [], [], []
        for row, (_, tokens) in enumerate(items):
            for term, count in Counter(tokens).items():
                rows.append(row)
                cols.append(self.vocab.setdefault(term, len(self.vocab)))
                vals.append(count)
        n_old, n_new = self.tf.shape[0], len(items)
        new = sp.csr_matrix((vals, (rows, cols)), shape=(n_new, len(self.vocab)), dtype=np.float32)
        old = self.tf.copy()
        old.resize((n_old, len(self.vocab)))
        self.tf = sp.vstack([old, new], format="csr")
        new_ids = np.array([cid for cid, _ in items], dtype=np.int64)
        self.ids = np.concatenate([self.ids, new_ids])
        self.alive = np.concatenate([self.alive, np.ones(n_new, dtype=bool)])
        self._row_of.update({int(cid): n_old + i for i, cid in enumerate(new_ids)})
        self._invalidate()

    def delete(self, chunk_ids: Iterable[int]) -> None:
        rows = [self._row_of.pop(int(cid)) for cid in chunk_ids if int(cid) in self._row_of]
        if not rows:
            return
        self.alive[rows] = False
        keep = sp.diags(self.alive.astype(np.float32))
        self.tf = (keep @ self.tf).tocsr()
        self.tf.eliminate_zeros()
        self._invalidate()

    def compact(self) -> None:
        """Drop tombstoned rows (and terms no live row uses) so the saved matrix holds only live data."""
        if self.alive.all():
            return
        self.tf = self.tf[self.alive]
        self.ids = self.ids[self.alive]
        self.alive = np.ones(len(self.ids), dtype=bool)
        used = np.flatnonzero(np.asarray(self.tf.getnnz(axis=0)) > 0)
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        self.vocab = {terms[c]: i for i, c in enumerate(used)}
        self.tf = self.tf[:, used].tocsr()
        self._row_of = {int(cid): i for i, cid in enumerate(self.ids)}
        self._invalidate()

    def _invalidate(self) -> None:
        self._weights = self._idf = None

    def _prepare(self) -> None:
        """Term weights per (chunk, term) and idf per term, exactly as rank_bm25 computes them."""
        n_docs = int(self.alive.sum())
        doc_len = np.asarray(self.tf.sum(axis=1, dtype=np.float64)).ravel()
        avgdl = doc_len[self.alive].sum() / n_docs if n_docs else 1.0
        df = np.asarray((self.tf > 0).sum(axis=0)).ravel().astype(np.float64)
        idf = np.log(n_docs - df + 0.5) - np.log(df + 0.5)
        present = df > 0  # rank_bm25 only knows terms of live documents
        if present.any():
            floor = self.epsilon * idf[present].mean()
            idf = np.where(present & (idf < 0), floor, idf)
        self._idf = np.where(present, idf, 0.0)
        tf = self.tf.tocoo()
        norm = self.k1 * (1 - self.b + self.b * doc_len[tf.row] / avgdl) if n_docs else 1.0
        data = tf.data * (self.k1 + 1) / (tf.data + norm) * self._idf[tf.col]
        self._weights = sp.csc_matrix((data, (tf.row, tf.col)), shape=self.tf.shape)

    def scores(self, query_tokens: Sequence[str]) -> np.ndarray:
        """Score of every row (dead rows score 0); repeated query terms count repeatedly, as in rank_bm25."""
        if self._weights is None:
            self._prepare()
        counts = Counter(t for t in query_tokens if t in self.vocab)
        if not counts:
            return np.zeros(self.tf.shape[0])
        cols = [self.vocab[t] for t in counts]
        q = np.fromiter(counts.values(), dtype=np.float64)
        return np.asarray(self._weights[:, cols] @ q).ravel()

    def search(self, query_tokens: Sequence[str], k: int, allowed: np.ndarray | None = None):
        """Top-k (chunk_ids, scores) with score > 0; ``allowed`` is an optional boolean row mask."""
        scores = self.scores(query_tokens)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        candidates = np.flatnonzero(scores > 0)
        if len(candidates) > k:
            candidates = candidates[np.argpartition(-scores[candidates], k - 1)[:k]]
        order = candidates[np.lexsort((self.ids[candidates], -scores[candidates]))]
        return self.ids[order], scores[order]

    def save(self, path: Path) -> None:
        self.compact()
        terms = sorted(self.vocab, key=self.vocab.__getitem__)
        np.savez(
            path,
            data=self.tf.data,
            indices=self.tf.indices,
            indptr=self.tf.indptr,
            shape=np.array(self.tf.shape),
            ids=self.ids,
            terms=np.frombuffer("\n".join(terms).encode(), dtype=np.uint8),
            params=np.array([self.k1, self.b, self.epsilon]),
        )

    @classmethod
    def load(cls, path: Path) -> BM25:
        with np.load(path) as z:
            k1, b, eps = z["params"].tolist()
            bm = cls(k1, b, eps)
            bm.tf = sp.csr_matrix((z["data"], z["indices"], z["indptr"]), shape=tuple(z["shape"]))
            bm.ids = z["ids"]
            terms = z["terms"].tobytes().decode()
            bm.vocab = {t: i for i, t in enumerate(terms.split("\n"))} if terms else {}
        bm.alive = np.ones(len(bm.ids), dtype=bool)
        bm._row_of = {int(cid): i for i, cid in enumerate(bm.ids)}
        return bm
