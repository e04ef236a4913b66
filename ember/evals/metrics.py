"""Ranking metrics over runs (query → doc → score) and qrels (query → doc → relevance).

Definitions follow trec_eval as ranx implements them: nDCG with linear gain and log2 discount, the ideal
ranking from the judged relevances; Recall@k over relevant (rel > 0) documents; MRR@k from the first
relevant hit. Ties break by document id, descending (a convention; runners here emit distinct scores).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

Run = Mapping[str, Mapping[str, float]]
Qrels = Mapping[str, Mapping[str, int]]


def ranked(docs: Mapping[str, float]) -> list[str]:
    return [d for d, _ in sorted(docs.items(), key=lambda item: (item[1], item[0]), reverse=True)]


def ndcg_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    dcg = sum(judged.get(d, 0) / math.log2(i + 2) for i, d in enumerate(ranking[:k]))
    ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
    idcg = sum(r / math.log2(i + 2) for i, r in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    relevant = {d for d, r in judged.items() if r > 0}
    return len(relevant & set(ranking[:k])) / len(relevant) if relevant else 0.0


def mrr_at(ranking: list[str], judged: Mapping[str, int], k: int) -> float:
    for i, d in enumerate(ranking[:k]):
        if judged.get(d, 0) > 0:
            return 1.0 / (i + 1)
    return 0.0


METRICS = {
    "ndcg@10": (ndcg_at, 10),
    "recall@10": (recall_at, 10),
    "recall@50": (recall_at, 50),
    "mrr@10": (mrr_at, 10),
}


def evaluate(run: Run, qrels: Qrels) -> dict[str, float]:
    """Mean of each metric over the judged queries (a query missing from the run scores 0)."""
    totals = dict.fromkeys(METRICS, 0.0)
    for query, judged in qrels.items():
        ranking = ranked(run.get(query, {}))
        for name, (metric, k) in METRICS.items():
            totals[name] += metric(ranking, judged, k)
    n = max(1, len(qrels))
    return {name: total / n for name, total in totals.items()}
