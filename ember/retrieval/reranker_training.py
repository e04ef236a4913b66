"""Fine-tune a cross-encoder reranker on query–passage pairs mined from a collection.

Synthetic queries: a document's title → its first chunk, a heading path → its section's chunk, and
a chunk's first sentence → the chunk. Negatives are BM25 hard negatives from other documents. Queries
are split by document, so the held-out report measures the gain on documents the model never saw.
"""

from __future__ import annotations

import math
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ember.retrieval.collection_index import CollectionIndex, indexed_text
from ember.retrieval.embedder import best_device, resolve_model_path

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


@dataclass(frozen=True)
class MinedQuery:
    text: str
    positive: int  # chunk id
    document_id: int
    negatives: tuple[int, ...]


@dataclass
class TrainingReport:
    train_queries: int
    heldout_queries: int
    losses: list[float] = field(default_factory=list)
    before: dict[str, float] = field(default_factory=dict)  # held-out metrics of the BM25 order
    after: dict[str, float] = field(default_factory=dict)  # held-out metrics after reranking


def mine_queries(index: CollectionIndex, negatives: int = 3, seed: int = 0) -> list[MinedQuery]:
    """Synthetic (query, positive chunk, BM25 hard negatives) triples from an index's records."""
    by_document: dict[int, list] = {}
    for record in sorted(index.records.values(), key=lambda r: r.chunk_id):
        by_document.setdefault(record.document_id, []).append(record)
    raw: list[tuple[str, int, int]] = []
    for doc_id, chunks in by_document.items():
        if chunks[0].title:
            raw.append((chunks[0].title, chunks[0].chunk_id, doc_id))
        seen_headings = set()
        for chunk in chunks:
            if chunk.heading_path and chunk.heading_path not in seen_headings:
                seen_headings.add(chunk.heading_path)
                raw.append((chunk.heading_path.replace(" > ", " "), chunk.chunk_id, doc_id))
            sentences = [s for s in _SENTENCE_END.split(chunk.text.strip()) if len(s.split()) >= 5]
            if len(sentences) >= 2:
                raw.append((sentences[0], chunk.chunk_id, doc_id))
    rng = random.Random(seed)
    mined = []
    for text, positive, doc_id in raw:
        ids, _ = index.bm25.search(index.tokenizer(text), 20)
        hard = [int(c) for c in ids if index.records[int(c)].document_id != doc_id][:negatives]
        if len(hard) < negatives:  # a tiny collection: top up with random chunks of other documents
            others = [c for c, r in index.records.items() if r.document_id != doc_id and c not in hard]
            hard += rng.sample(others, min(negatives - len(hard), len(others)))
        if hard:
            mined.append(MinedQuery(text, positive, doc_id, tuple(hard)))
    return mined


def split_by_document(queries: list[MinedQuery], heldout: float, seed: int = 0):
    docs = sorted({q.document_id for q in queries})
    random.Random(seed).shuffle(docs)
    held = set(docs[: max(1, round(len(docs) * heldout))]) if heldout > 0 else set()
    return [q for q in queries if q.document_id not in held], [q for q in queries if q.document_id in held]


def ranking_metrics(ranked: list[list[int]], positives: list[int], k: int = 10) -> dict[str, float]:
    """MRR@k and nDCG@k with one relevant chunk per query."""
    mrr = ndcg = 0.0
    for ids, positive in zip(ranked, positives, strict=True):
        if positive in ids[:k]:
            rank = ids.index(positive) + 1
            mrr += 1 / rank
            ndcg += 1 / math.log2(rank + 1)
    n = max(1, len(positives))
    return {"mrr@10": mrr / n, "ndcg@10": ndcg / n}


def evaluate(model, index: CollectionIndex, queries: list[MinedQuery], candidates: int = 20):
    """Held-out metrics of the BM25 candidate order and of the same candidates reranked by ``model``."""
    before, after = [], []
    for q in queries:
        ids = [int(c) for c in index.bm25.search(index.tokenizer(q.text), candidates)[0]]
        before.append(ids)
        if ids:
            scores = model.predict(
                [(q.text, indexed_text(index.records[c])) for c in ids], show_progress_bar=False
            )
            after.append([ids[i] for i in np.argsort(-np.asarray(scores), kind="stable")])
        else:
            after.append([])
    positives = [q.positive for q in queries]
    return ranking_metrics(before, positives), ranking_metrics(after, positives)


def train_reranker(
    index: CollectionIndex,
    base: str,
    output: Path,
    epochs: int = 1,
    batch_size: int = 16,
    learning_rate: float = 3e-5,
    max_length: int = 256,
    heldout: float = 0.2,
    max_queries: int | None = None,
    max_heldout: int = 200,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
) -> TrainingReport:
    """Fine-tune ``base`` (encoder checkpoint name or path) as a 1-logit cross-encoder saved to ``output``."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(seed)
    queries = mine_queries(index, seed=seed)
    if not queries:
        raise ValueError(
            f"collection '{index.name}' yielded no training queries (needs ≥2 documents with text)"
        )
    train, held = split_by_document(queries, heldout, seed)
    if max_queries is not None:
        train = random.Random(seed).sample(train, min(max_queries, len(train)))
    held = random.Random(seed).sample(held, min(max_heldout, len(held)))
    pairs = [(q.text, q.positive, 1.0) for q in train] + [
        (q.text, n, 0.0) for q in train for n in q.negatives
    ]
    random.Random(seed).shuffle(pairs)

    model = CrossEncoder(resolve_model_path(base), num_labels=1, max_length=max_length, device=best_device())
    report = TrainingReport(train_queries=len(train), heldout_queries=len(held))
    if held:
        report.before, _ = evaluate(model, index, held)
    net, tokenizer = model.model, model.tokenizer
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=0.01)
    steps = epochs * math.ceil(len(pairs) / batch_size)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, (s + 1) / max(1, steps // 10))
    )
    loss_fn = torch.nn.BCEWithLogitsLoss()
    net.train()
    step = 0
    for _ in range(epochs):
        for start in range(0, len(pairs), batch_size):
            batch = pairs[start : start + batch_size]
            features = tokenizer(
                [q for q, _, _ in batch],
                [indexed_text(index.records[c]) for _, c, _ in batch],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(net.device)
            labels = torch.tensor([y for _, _, y in batch], device=net.device)
            loss = loss_fn(net(**features).logits.view(-1), labels)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(net.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            step += 1
            report.losses.append(loss.item())
            if progress:
                progress(step, steps, report.losses[-1])
    net.eval()
    if held:
        _, report.after = evaluate(model, index, held)
    output.mkdir(parents=True, exist_ok=True)
    model.save(str(output))
    return report
