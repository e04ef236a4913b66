"""Fine-tune a cross-encoder reranker on query–passage pairs mined from a collection.

Synthetic queries: a document's title → its first chunk, a heading path → its section's chunk, a
chunk's first sentence → the chunk, a few-word window of an inner sentence → its chunk (less word
overlap), and a sentence with its number asked for ("... has how many layers?") → its chunk, the
shape of a factoid question whose answer the query lacks. Each query is trained listwise against
BM25 hard negatives from other documents (softmax cross-entropy over positive + negatives), which
ranks better per step than pointwise labels.

Queries are split by document, so the held-out report measures the gain on unseen documents, over
the candidates search would give the reranker (hybrid top-30). The held-out split also picks how
much of the hybrid score to blend into the reranker's (saved with the model, applied by
``Reranker``), so a reranker trained on a small budget cannot do worse there than hybrid alone.
"""

from __future__ import annotations

import json
import math
import os
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ember.retrieval.collection_index import CollectionIndex, indexed_text
from ember.retrieval.embedder import best_device, bf16_is_fast, resolve_model_path
from ember.retrieval.rerank import SETTINGS_FILE, blend

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_NUMBER = re.compile(r"^\(?\d[\d,.]*%?\)?[,.;:]?$")
BLEND_WEIGHTS = tuple(w / 10 for w in range(11))


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
    before: dict[str, float] = field(default_factory=dict)  # held-out metrics of the hybrid order
    after: dict[str, float] = field(default_factory=dict)  # held-out metrics, cross-encoder score alone
    blended: dict[str, float] = field(default_factory=dict)  # held-out metrics at blend_weight
    blend_weight: float = 1.0  # share of the cross-encoder in the final score


def _span(sentence: str, rng: random.Random) -> str:
    words = sentence.split()
    width = rng.randint(4, min(8, len(words)))
    start = rng.randrange(len(words) - width + 1)
    return " ".join(words[start : start + width]).strip(".,;:!?()\"'")


def _number_question(sentence: str) -> str | None:
    """The sentence around its first number, with the number asked for: "... reached how many points?"."""
    words = sentence.rstrip(".!?").split()
    at = next((i for i, w in enumerate(words) if _NUMBER.match(w)), None)
    if at is None:
        return None
    before, after = words[max(0, at - 8) : at], words[at + 1 : at + 6]
    return " ".join([*before, "how many", *after]) + "?"


def mine_queries(index: CollectionIndex, negatives: int = 7, seed: int = 0) -> list[MinedQuery]:
    """Synthetic (query, positive chunk, BM25 hard negatives) triples from an index's records."""
    rng = random.Random(seed)
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
            inner = [s for s in sentences[1:] if len(s.split()) >= 8]
            if inner:
                raw.append((_span(rng.choice(inner), rng), chunk.chunk_id, doc_id))
            questions = [q for q in map(_number_question, sentences) if q]
            if questions:
                raw.append((rng.choice(questions), chunk.chunk_id, doc_id))
    mined = []
    for text, positive, doc_id in raw:
        ids, _ = index.bm25.search(index.tokenizer(text), 3 * negatives)
        hard = [int(c) for c in ids if index.records[int(c)].document_id != doc_id][:negatives]
        if len(hard) < negatives:  # a small collection: top up with random chunks of other documents
            others = [c for c, r in index.records.items() if r.document_id != doc_id and c not in hard]
            if others:
                hard += rng.sample(others, min(negatives - len(hard), len(others)))
            if hard:  # every query keeps the same group size, repeating negatives if it must
                hard += rng.choices(hard, k=negatives - len(hard))
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


@dataclass
class HeldoutScores:
    """Per held-out query: hybrid candidates, their fused scores and the cross-encoder's."""

    candidates: list[list[int]]
    first_stage: list[np.ndarray]
    cross_encoder: list[np.ndarray]
    positives: list[int]

    def metrics(self, weight: float) -> dict[str, float]:
        ranked = []
        for ids, first, ce in zip(self.candidates, self.first_stage, self.cross_encoder, strict=True):
            order = np.argsort(-blend(ce, first, weight), kind="stable") if ids else []
            ranked.append([ids[i] for i in order])
        return ranking_metrics(ranked, self.positives)


class _OneIndex:
    """The store interface Retriever reads, over the one index being trained on."""

    def __init__(self, index: CollectionIndex) -> None:
        self.index = index

    def get(self, collection: str) -> CollectionIndex:
        return self.index


def score_heldout(model, index: CollectionIndex, queries: list[MinedQuery]) -> HeldoutScores:
    """Held-out queries through hybrid search (its default settings), then the cross-encoder."""
    from ember.retrieval.retriever import RetrievalConfig, Retriever

    config = RetrievalConfig()
    retriever = Retriever(_OneIndex(index), config=config)
    held = HeldoutScores([], [], [], [q.positive for q in queries])
    for q in queries:
        hits = retriever.run(q.text, [index.name], k=config.rerank_top_n, mode="hybrid").hits
        ids, scores = [h.chunk_id for h in hits], [h.score for h in hits]
        ce = np.zeros(0)
        if ids:
            pairs = [(q.text, indexed_text(index.records[c])) for c in ids]
            ce = np.asarray(model.predict(pairs, show_progress_bar=False), dtype=np.float64)
        held.candidates.append(ids)
        held.first_stage.append(np.asarray(scores, dtype=np.float64))
        held.cross_encoder.append(ce)
    return held


def keep_first_layers(net, layers: int) -> None:
    """Drop all but the first ``layers`` transformer layers of a BERT-style encoder, config included."""
    stack = getattr(getattr(net.base_model, "encoder", None), "layer", None)
    if stack is None:
        raise ValueError(f"{type(net).__name__} has no encoder.layer stack to cut to {layers} layers")
    if not 1 <= layers <= len(stack):
        raise ValueError(f"layers must be within 1..{len(stack)} for this encoder, got {layers}")
    net.base_model.encoder.layer = stack[:layers]
    net.config.num_hidden_layers = layers


def train_reranker(
    index: CollectionIndex,
    base: str,
    output: Path,
    epochs: int = 1,
    batch_size: int = 4,
    learning_rate: float = 3e-5,
    max_length: int = 128,
    heldout: float = 0.2,
    max_queries: int | None = None,
    max_heldout: int = 200,
    seed: int = 0,
    progress: Callable[[int, int, float], None] | None = None,
    negatives: int = 7,
    layers: int | None = None,
) -> TrainingReport:
    """Fine-tune ``base`` (encoder checkpoint name or path) as a 1-logit cross-encoder saved to ``output``.

    ``batch_size`` counts queries per step; each brings its positive and ``negatives`` passages.
    ``layers`` keeps only the encoder's first layers: a shallower, faster reranker.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch
    from sentence_transformers import CrossEncoder

    torch.manual_seed(seed)
    queries = mine_queries(index, negatives=negatives, seed=seed)
    if not queries:
        raise ValueError(
            f"collection '{index.name}' yielded no training queries (needs ≥2 documents with text)"
        )
    train, held = split_by_document(queries, heldout, seed)
    if max_queries is not None:
        train = random.Random(seed).sample(train, min(max_queries, len(train)))
    held = random.Random(seed).sample(held, min(max_heldout, len(held)))

    model = CrossEncoder(resolve_model_path(base), num_labels=1, max_length=max_length, device=best_device())
    if layers is not None:
        keep_first_layers(model.model, layers)
    report = TrainingReport(train_queries=len(train), heldout_queries=len(held))
    net, tokenizer = model.model, model.tokenizer
    optimizer = torch.optim.AdamW(net.parameters(), lr=learning_rate, weight_decay=0.01)
    steps = epochs * math.ceil(len(train) / batch_size)
    warmup = max(1, steps // 10)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min((s + 1) / warmup, max(0.0, (steps - s) / max(1, steps - warmup)))
    )
    # Mixed precision where bf16 is native (the weights and optimizer stay fp32): ~2x the steps per hour.
    autocast = bf16_is_fast(str(net.device))
    net.train()
    step = 0
    rng = random.Random(seed)
    for _ in range(epochs):
        order = rng.sample(train, len(train))
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            group = 1 + negatives
            features = tokenizer(
                [q.text for q in batch for _ in range(group)],
                [indexed_text(index.records[c]) for q in batch for c in (q.positive, *q.negatives)],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            ).to(net.device)
            with torch.autocast(net.device.type, dtype=torch.bfloat16, enabled=autocast):
                logits = net(**features).logits.float().view(len(batch), group)
            # The positive sits in column 0 of every group.
            loss = torch.nn.functional.cross_entropy(
                logits, torch.zeros(len(batch), dtype=torch.long, device=net.device)
            )
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
        scores = score_heldout(model, index, held)
        report.before = scores.metrics(0.0)
        report.after = scores.metrics(1.0)
        by_weight = {w: scores.metrics(w) for w in BLEND_WEIGHTS}
        # Highest MRR; among ties the larger cross-encoder share (its scores carry the new signal).
        report.blend_weight = max(BLEND_WEIGHTS, key=lambda w: (round(by_weight[w]["mrr@10"], 6), w))
        report.blended = by_weight[report.blend_weight]
    output.mkdir(parents=True, exist_ok=True)
    model.save(str(output))
    settings = {"blend_weight": report.blend_weight, "max_length": max_length}
    (output / SETTINGS_FILE).write_text(json.dumps(settings, indent=1))
    return report
