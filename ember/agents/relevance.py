"""How relevant a hit is, on a scale a fixed threshold can be set on.

Fused scores only encode ranks, so they cannot say "nothing here is relevant". The dense stage's cosine
similarity can: the wave-1 answer bench (docs/benchmarks.md) reported the top dense score of answerable
questions, to check the threshold against. A reranker from train-reranker is trained listwise, so its
scores rank well but have no fixed zero; its score decides only for hits the dense stage did not return.
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.retrieval.types import Hit


@dataclass(frozen=True)
class RelevanceThreshold:
    min_dense: float = 0.25  # cosine similarity, all-MiniLM-L6-v2
    min_rerank: float = 0.0  # cross-encoder score

    def relevant(self, hit: Hit) -> bool:
        if "dense" in hit.stages:
            return hit.stages["dense"].score >= self.min_dense
        if "rerank" in hit.stages:
            return hit.stages["rerank"].score >= self.min_rerank
        return not hit.stages  # a hit from a caller without stage scores is taken as given
