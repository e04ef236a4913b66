"""Fusing ranked lists: reciprocal rank fusion and a convex combination of min-max normalized scores."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

Ranked = Sequence[tuple[int, float]]  # (chunk_id, score), best first


def reciprocal_rank_fusion(runs: Mapping[str, Ranked], k: int = 60) -> list[tuple[int, float]]:
    """sum over runs of 1 / (k + rank); ties broken by chunk id so results are deterministic."""
    fused: dict[int, float] = {}
    for ranked in runs.values():
        for rank, (chunk_id, _) in enumerate(ranked, start=1):
            fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (k + rank)
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))


def _min_max(ranked: Ranked) -> dict[int, float]:
    if not ranked:
        return {}
    scores = [s for _, s in ranked]
    low, high = min(scores), max(scores)
    span = high - low
    return {cid: (s - low) / span if span > 0 else 1.0 for cid, s in ranked}


def convex_combination(sparse: Ranked, dense: Ranked, dense_weight: float = 0.5) -> list[tuple[int, float]]:
    """dense_weight * norm(dense) + (1 - dense_weight) * norm(sparse); absent from a run = 0."""
    if not 0.0 <= dense_weight <= 1.0:
        raise ValueError(f"dense_weight must be within [0, 1], got {dense_weight}")
    s, d = _min_max(sparse), _min_max(dense)
    fused = {
        cid: (1 - dense_weight) * s.get(cid, 0.0) + dense_weight * d.get(cid, 0.0)
        for cid in s.keys() | d.keys()
    }
    return sorted(fused.items(), key=lambda item: (-item[1], item[0]))
