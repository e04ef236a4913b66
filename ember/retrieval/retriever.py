"""The search pipeline: BM25 and dense candidates → fusion → optional cross-encoder rerank → Hits."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ember.retrieval.collection_index import CollectionIndex, indexed_text
from ember.retrieval.fusion import convex_combination, reciprocal_rank_fusion
from ember.retrieval.rerank import Reranker
from ember.retrieval.store import IndexStore
from ember.retrieval.types import ChunkRecord, Hit, StageResult, location_of

MODES = ("bm25", "dense", "hybrid", "hybrid+rerank")
RERANK_SKIPPED = "rerank skipped: no reranker configured (train one with `ember retrieval train-reranker`)"


@dataclass
class RetrievalConfig:
    depth: int = 50  # candidates per retriever
    # Convex fusion leaning on BM25: MiniLM trails BM25 on the identifier- and number-heavy dev sets, and
    # equal-weight RRF let it pull hybrid below BM25 on one of them (docs/benchmarks.md has both).
    fusion: str = "convex"  # or "rrf"
    rrf_k: int = 60
    dense_weight: float = 0.3  # for convex fusion
    rerank_top_n: int = 30


@dataclass
class SearchResult:
    hits: list[Hit]
    notes: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


def _matches(record: ChunkRecord, filters: Mapping[str, object]) -> bool:
    """Each filter is field → value or list of accepted values (e.g. {"document_id": [3, 4]})."""
    for name, wanted in filters.items():
        value = getattr(record, name)
        if isinstance(wanted, list | tuple | set | frozenset):
            if value not in wanted:
                return False
        elif value != wanted:
            return False
    return True


class Retriever:
    def __init__(
        self, store: IndexStore, reranker: Reranker | None = None, config: RetrievalConfig | None = None
    ) -> None:
        self.store = store
        self.reranker = reranker
        self.config = config or RetrievalConfig()

    def search(
        self,
        query: str,
        collections: Sequence[str],
        k: int = 8,
        filters: Mapping[str, object] | None = None,
        mode: str = "hybrid+rerank",
    ) -> list[Hit]:
        return self.run(query, collections, k, filters, mode).hits

    def run(
        self,
        query: str,
        collections: Sequence[str],
        k: int = 8,
        filters: Mapping[str, object] | None = None,
        mode: str = "hybrid+rerank",
    ) -> SearchResult:
        if self.config.fusion not in ("rrf", "convex"):
            raise ValueError(f"fusion must be 'rrf' or 'convex', got {self.config.fusion!r}")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        if not collections:
            raise ValueError("search needs at least one collection")
        for name in filters or {}:
            if name not in ChunkRecord.__dataclass_fields__:
                raise ValueError(
                    f"unknown filter field {name!r}; filterable: {list(ChunkRecord.__dataclass_fields__)}"
                )
        indexes = [self.store.get(c) for c in collections]
        result = SearchResult(hits=[])
        depth = self.config.depth
        stages: dict[str, list[tuple[int, float]]] = {}
        owner: dict[int, CollectionIndex] = {}

        start = time.perf_counter()
        if mode != "dense":
            stages["bm25"] = self._merge(
                [self._bm25(ix, query, depth, filters, owner) for ix in indexes], depth
            )
        t_bm25 = time.perf_counter()
        if mode != "bm25":
            vector = indexes[0].embedder.encode([query])
            stages["dense"] = self._merge(
                [self._dense(ix, vector, depth, filters, owner) for ix in indexes], depth
            )
        t_dense = time.perf_counter()
        result.timings_ms.update(bm25=(t_bm25 - start) * 1e3, dense=(t_dense - t_bm25) * 1e3)

        if mode in ("bm25", "dense"):
            final = stages[mode]
        else:
            if self.config.fusion == "convex":
                fused = convex_combination(stages["bm25"], stages["dense"], self.config.dense_weight)
            else:
                fused = reciprocal_rank_fusion(
                    {"bm25": stages["bm25"], "dense": stages["dense"]}, self.config.rrf_k
                )
            stages["fused"] = final = fused
            if mode == "hybrid+rerank":
                if self.reranker is None:
                    result.notes.append(RERANK_SKIPPED)
                else:
                    t0 = time.perf_counter()
                    head = fused[: self.config.rerank_top_n]
                    passages = [indexed_text(owner[cid].records[cid]) for cid, _ in head]
                    raw = self.reranker.scores(query, passages)
                    scores = self.reranker.final_scores(raw, [s for _, s in head])
                    order = np.lexsort(([cid for cid, _ in head], -scores))
                    # The stage keeps the raw cross-encoder score: relevance thresholds are set on it.
                    stages["rerank"] = [(head[i][0], float(raw[i])) for i in order]
                    # Past the reranked head the fused order continues, so k > rerank_top_n still works.
                    final = [(head[i][0], float(scores[i])) for i in order] + fused[len(head) :]
                    result.timings_ms["rerank"] = (time.perf_counter() - t0) * 1e3
        result.timings_ms["total"] = (time.perf_counter() - start) * 1e3

        ranks = {name: {cid: (r, s) for r, (cid, s) in enumerate(run, 1)} for name, run in stages.items()}
        for cid, score in final[:k]:
            record = owner[cid].records[cid]
            hit = Hit(
                chunk_id=cid,
                document_id=record.document_id,
                title=record.title,
                location=location_of(record),
                text=record.text,
                score=float(score),
                collection=owner[cid].name,
            )
            hit.stages = {n: StageResult(*ranks[n][cid]) for n in stages if cid in ranks[n]}
            result.hits.append(hit)
        return result

    @staticmethod
    def _merge(runs: list[list[tuple[int, float]]], depth: int) -> list[tuple[int, float]]:
        merged = [item for run in runs for item in run]
        return sorted(merged, key=lambda item: (-item[1], item[0]))[:depth]

    @staticmethod
    def _bm25(ix: CollectionIndex, query: str, depth: int, filters, owner: dict) -> list[tuple[int, float]]:
        if not ix.exists and not ix.records:
            return []
        allowed = None
        if filters:
            records = ix.records
            allowed = np.array(
                [_matches(records[int(c)], filters) if c in records else False for c in ix.bm25.ids]
            )
        ids, scores = ix.bm25.search(ix.tokenizer(query), depth, allowed)
        owner.update(dict.fromkeys(ids.tolist(), ix))
        return list(zip(ids.tolist(), scores.tolist(), strict=True))

    @staticmethod
    def _dense(
        ix: CollectionIndex, vector: np.ndarray, depth: int, filters, owner: dict
    ) -> list[tuple[int, float]]:
        if not ix.exists and not ix.records:
            return []
        # Filters are applied after an over-fetch: FAISS has no cheap per-query row mask for every index kind.
        ids, scores = ix.dense.search(vector, depth * 4 if filters else depth)
        run = [(int(c), float(s)) for c, s in zip(ids[0], scores[0], strict=True) if c >= 0]
        if filters:
            run = [(c, s) for c, s in run if _matches(ix.records[c], filters)][:depth]
        owner.update(dict.fromkeys([c for c, _ in run], ix))
        return run
