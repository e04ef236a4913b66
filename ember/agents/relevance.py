"""How relevant a search's hits are, on a scale a fixed threshold can be set on.

Fused scores only encode ranks, so they cannot say "nothing here is relevant". The dense stage's cosine
similarity can: bench/answer/run.py reports the top dense score of answerable questions, to check the
threshold against. So a search passes when its best dense score does (a reranker's score decides when
the dense stage returned none of the hits: trained listwise, it ranks well but has no fixed zero).

Each hit of a search that passes is then kept on its own dense score, or, when it has none, on a top
rank in BM25: a hit only BM25 found (beyond the dense stage's candidate depth) has no dense score at all,
and on identifier- and number-heavy text it is often the one that holds the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

from ember.retrieval.types import Hit


@dataclass(frozen=True)
class RelevanceThreshold:
    min_dense: float = 0.25  # cosine similarity, all-MiniLM-L6-v2
    min_rerank: float = 0.0  # cross-encoder score
    lexical_rank: int = 10  # BM25's own top ranks count as evidence, whatever the dense score

    def grade(self, hits: list[Hit]) -> list[Hit]:
        """The hits worth showing the model, in their order; [] when nothing in the search is relevant."""
        if not any(self._scored_relevant(h) for h in hits) and any(h.stages for h in hits):
            return []
        return [h for h in hits if not h.stages or self._scored_relevant(h) or self._bm25_only_top(h)]

    def _scored_relevant(self, hit: Hit) -> bool:
        if "dense" in hit.stages:
            return hit.stages["dense"].score >= self.min_dense
        if "rerank" in hit.stages:
            return hit.stages["rerank"].score >= self.min_rerank
        return False

    def _bm25_only_top(self, hit: Hit) -> bool:
        unscored = "dense" not in hit.stages and "rerank" not in hit.stages
        return unscored and "bm25" in hit.stages and hit.stages["bm25"].rank <= self.lexical_rank
