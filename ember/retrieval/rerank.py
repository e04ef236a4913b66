"""Cross-encoder rerank stage (sentence-transformers ``CrossEncoder``, any name or path)."""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from ember.retrieval.embedder import best_device


class Reranker:
    def __init__(self, model: str, batch_size: int = 32, max_length: int | None = None) -> None:
        self.model_name = model
        self.batch_size = batch_size
        self._model = _load(model, max_length)

    def scores(self, query: str, passages: Sequence[str]) -> np.ndarray:
        if not passages:
            return np.zeros(0)
        pairs = [(query, p) for p in passages]
        raw = self._model.predict(pairs, batch_size=self.batch_size, show_progress_bar=False)
        return np.asarray(raw, dtype=np.float64).reshape(len(passages))


@lru_cache(maxsize=2)
def _load(model: str, max_length: int | None):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from sentence_transformers import CrossEncoder

    return CrossEncoder(model, max_length=max_length, device=best_device())
