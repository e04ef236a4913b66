"""Retrieval evaluation: index a BEIR corpus, run every mode over its queries, report metrics and latency.

The corpus goes straight into a temporary collection index (corpus documents are short, so the
platform's file ingestion adds nothing but time); each document is split into passages, and a
document's rank is that of its best passage.
"""

from __future__ import annotations

import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ember.evals.beir import BeirDataset
from ember.evals.metrics import evaluate
from ember.retrieval.embedder import DEFAULT_EMBEDDING_MODEL
from ember.retrieval.rerank import Reranker
from ember.retrieval.retriever import MODES, RetrievalConfig, Retriever
from ember.retrieval.splitting import split_passages
from ember.retrieval.store import IndexStore
from ember.retrieval.types import ChunkRecord

RUN_DEPTH = 100  # passages fetched per query, enough for Recall@50 at document level


@dataclass
class ModeResult:
    mode: str
    metrics: dict[str, float]
    latency_ms_p50: float
    latency_ms_p95: float
    run: dict[str, dict[str, float]] = field(repr=False, default_factory=dict)


@dataclass
class RetrievalEvalReport:
    dataset: str
    queries: int
    documents: int
    passages: int
    index_seconds: float
    results: list[ModeResult]
    notes: list[str]
    config: dict


def corpus_records(dataset: BeirDataset, max_words: int) -> tuple[list[ChunkRecord], list[str]]:
    """Passages of every corpus document; document_id is the position in the returned corpus id list."""
    records, doc_ids = [], list(dataset.corpus)
    for doc_number, doc_id in enumerate(doc_ids):
        doc = dataset.corpus[doc_id]
        for passage in split_passages(doc["text"], max_words) or [doc["title"]]:
            records.append(
                ChunkRecord(len(records) + 1, doc_number, passage, title=doc["title"], source=doc_id)
            )
    return records, doc_ids


def run_retrieval_eval(
    dataset: BeirDataset,
    modes: Sequence[str] = MODES,
    reranker: str | None = None,
    embedding_model: str = DEFAULT_EMBEDDING_MODEL,
    index_dir: Path | None = None,
    max_words: int = 200,
    config: RetrievalConfig | None = None,
    on_query: Callable[[str], None] | None = None,
) -> RetrievalEvalReport:
    """Run ``modes`` over ``dataset``; ``index_dir`` keeps the built index (e.g. to train a reranker on)."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown modes {unknown}; choose from {', '.join(MODES)}")
    config = config or RetrievalConfig()
    records, doc_ids = corpus_records(dataset, max_words)
    with tempfile.TemporaryDirectory(prefix="ember-eval-") as tmp:
        root = index_dir.parent if index_dir else Path(tmp)
        name = index_dir.name if index_dir else "corpus"
        store = IndexStore(root, embedding_model)
        start = time.perf_counter()
        if index_dir is None or not store.get(name).exists:
            store.get(name).upsert(records, progress=True)
            store.get(name).save()
        index_seconds = time.perf_counter() - start
        retriever = Retriever(store, Reranker(reranker) if reranker else None, config)
        results, notes = [], []
        for mode in modes:
            if mode == "hybrid+rerank" and reranker is None:
                notes.append("hybrid+rerank not run: no reranker given (--reranker)")
                continue
            run, latencies = {}, []
            for query_id, text in dataset.queries.items():
                t0 = time.perf_counter()
                hits = retriever.search(text, [name], k=RUN_DEPTH, mode=mode)
                latencies.append((time.perf_counter() - t0) * 1e3)
                scores: dict[str, float] = {}
                for rank, hit in enumerate(hits, 1):  # a document ranks where its best passage does
                    scores.setdefault(doc_ids[hit.document_id], 1.0 / rank)
                run[query_id] = scores
                if on_query:
                    on_query(mode)
            results.append(
                ModeResult(
                    mode,
                    evaluate(run, dataset.qrels),
                    float(np.percentile(latencies, 50)),
                    float(np.percentile(latencies, 95)),
                    run,
                )
            )
    return RetrievalEvalReport(
        dataset.name,
        len(dataset.queries),
        len(dataset.corpus),
        len(records),
        index_seconds,
        results,
        notes,
        {
            "embedding_model": embedding_model,
            "reranker": reranker,
            "depth": config.depth,
            "fusion": config.fusion,
            "rrf_k": config.rrf_k,
            "rerank_top_n": config.rerank_top_n,
            "passage_max_words": max_words,
        },
    )


COLUMNS = ("ndcg@10", "recall@10", "recall@50", "mrr@10")


def to_markdown(report: RetrievalEvalReport) -> str:
    lines = [
        f"**{report.dataset}**: {report.queries} queries, {report.documents} documents "
        f"({report.passages} passages)",
        "",
        "| mode | nDCG@10 | Recall@10 | Recall@50 | MRR@10 | p50 ms | p95 ms |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report.results:
        cells = [f"{r.metrics[c]:.4f}" for c in COLUMNS] + [
            f"{r.latency_ms_p50:.1f}",
            f"{r.latency_ms_p95:.1f}",
        ]
        lines.append(f"| {r.mode} | " + " | ".join(cells) + " |")
    lines += [f"\n_{note}_" for note in report.notes]
    return "\n".join(lines) + "\n"


def write_report(report: RetrievalEvalReport, out: Path) -> tuple[Path, Path]:
    out.mkdir(parents=True, exist_ok=True)
    payload = {
        "dataset": report.dataset,
        "queries": report.queries,
        "documents": report.documents,
        "passages": report.passages,
        "index_seconds": report.index_seconds,
        "config": report.config,
        "notes": report.notes,
        "results": {
            r.mode: {**r.metrics, "latency_ms_p50": r.latency_ms_p50, "latency_ms_p95": r.latency_ms_p95}
            for r in report.results
        },
    }
    json_path, md_path = out / f"retrieval-{report.dataset}.json", out / f"retrieval-{report.dataset}.md"
    json_path.write_text(json.dumps(payload, indent=2))
    md_path.write_text(to_markdown(report))
    return json_path, md_path
