"""Retrieval benchmark on real text at 10k and 100k chunks: build time, per-mode latency, BM25 vs rank_bm25,
FAISS exact vs IVF vs HNSW.

Text: Python's reference topics plus the .py/.md/.rst/.txt files of the installed packages, split into
~80-word chunks. Vectors: MiniLM on 2 CPU cores cannot embed 100k chunks in a benchmark run, so the
index vectors are a fixed random projection (to 384 dims, normalized) of each chunk's TF-IDF row.
They keep a real corpus's neighbour structure (what IVF/HNSW recall depends on) and MiniLM's dimension
(what search latency depends on); queries are still embedded by MiniLM in the dense/hybrid modes, so
those latencies are real, but their dense *rankings* are meaningless. Embedding throughput is measured
separately on a sample.

    python bench/retrieval/run.py --sizes 10000 100000 [--reranker PATH]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path
from pydoc_data.topics import topics

import numpy as np
import scipy.sparse as sp
from rank_bm25 import BM25Okapi
from rich.console import Console
from rich.table import Table

from ember.retrieval.collection_index import CollectionIndex, indexed_text
from ember.retrieval.dense import DenseIndex
from ember.retrieval.embedder import DEFAULT_EMBEDDING_MODEL, Embedder, resolve_model_path
from ember.retrieval.rerank import Reranker
from ember.retrieval.retriever import MODES, Retriever
from ember.retrieval.store import IndexStore
from ember.retrieval.types import ChunkRecord

console = Console()
DIM = 384
PROJECTED_TERMS = 50_000


def real_chunks(n: int, words: int = 80) -> list[ChunkRecord]:
    texts = [(name, text) for name, text in sorted(topics.items())]
    budget = n * words * 1.1 - sum(len(t.split()) for _, t in texts)
    roots = sorted({Path(p) for p in sys.path if p.endswith("site-packages")})
    files = (
        p for root in roots for p in sorted(root.rglob("*")) if p.suffix in (".py", ".md", ".rst", ".txt")
    )
    for path in files:
        if budget <= 0:
            break
        if path.is_file():
            text = path.read_text(errors="ignore")
            texts.append((path.name, text))
            budget -= len(text.split())
    records: list[ChunkRecord] = []
    for doc_id, (title, text) in enumerate(texts):
        tokens = text.split()
        for start in range(0, len(tokens), words):
            records.append(
                ChunkRecord(len(records) + 1, doc_id, " ".join(tokens[start : start + words]), title)
            )
            if len(records) == n:
                return records
    raise SystemExit(f"only {len(records)} chunks of text found, {n} requested")


def projected_vectors(index: CollectionIndex, texts_tokens: list[list[str]]) -> np.ndarray:
    """Random projection of TF-IDF rows (vocabulary of the index's BM25) to DIM, L2-normalized."""
    df = np.asarray((index.bm25.tf > 0).sum(axis=0)).ravel()
    keep = np.argsort(-df)[:PROJECTED_TERMS]  # the most frequent terms keep the projection matrix small
    column = {t: i for t, i in index.bm25.vocab.items()}
    position = np.full(len(df), -1)
    position[keep] = np.arange(len(keep))
    rows, cols = [], []
    for r, tokens in enumerate(texts_tokens):
        for t in tokens:
            c = column.get(t)
            if c is not None and position[c] >= 0:
                rows.append(r)
                cols.append(position[c])
    tf = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(texts_tokens), len(keep)))
    idf = np.log((1 + index.bm25.tf.shape[0]) / (1 + df[keep]))
    projection = np.random.default_rng(0).standard_normal((len(keep), DIM)).astype(np.float32)
    vectors = np.asarray((tf @ sp.diags(idf)) @ projection, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)


def pct(values: list[float]) -> tuple[float, float]:
    return float(np.percentile(values, 50)), float(np.percentile(values, 95))


def bench_size(n: int, queries: list[str], reranker: Reranker, rank_bm25_queries: int) -> dict:
    records = real_chunks(n)
    out: dict = {"n": n}
    with tempfile.TemporaryDirectory() as tmp:
        index = CollectionIndex(Path(tmp) / "bench", exact_limit=10**9)
        tokens = [index.tokenizer(indexed_text(r)) for r in records]
        t0 = time.perf_counter()
        index.bm25.upsert(zip([r.chunk_id for r in records], tokens, strict=True))
        index.bm25.scores(["warmup"])  # builds the weighted matrix
        out["bm25_build_s"] = time.perf_counter() - t0
        vectors = projected_vectors(index, tokens)
        t0 = time.perf_counter()
        index._dense = DenseIndex(DIM, exact_limit=10**9)
        index.dense.upsert(np.array([r.chunk_id for r in records]), vectors)
        index.records.update({r.chunk_id: r for r in records})
        out["faiss_flat_build_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        index.save()
        out["save_s"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        reopened = CollectionIndex(index.directory)
        reopened.bm25, reopened.dense, reopened.records  # noqa: B018 - force the lazy loads
        out["load_s"] = time.perf_counter() - t0

        # BM25 vs rank_bm25, same tokens, both producing a top-10.
        q_tokens = [index.tokenizer(q) for q in queries]
        t0 = time.perf_counter()
        for q in q_tokens:
            index.bm25.search(q, 10)
        ours = len(q_tokens) / (time.perf_counter() - t0)
        reference = BM25Okapi(tokens)
        t0 = time.perf_counter()
        for q in q_tokens[:rank_bm25_queries]:
            np.argsort(-reference.get_scores(q))[:10]
        theirs = rank_bm25_queries / (time.perf_counter() - t0)
        out.update(bm25_qps=ours, rank_bm25_qps=theirs, bm25_ratio=ours / theirs)
        del reference

        store = IndexStore(Path(tmp))
        retriever = Retriever(store, reranker)
        retriever.search(queries[0], ["bench"], mode="hybrid+rerank")  # warm-up: model loads
        for mode in MODES:
            latencies = []
            for q in queries:
                t0 = time.perf_counter()
                retriever.search(q, ["bench"], k=8, mode=mode)
                latencies.append((time.perf_counter() - t0) * 1e3)
            out[f"{mode}_p50"], out[f"{mode}_p95"] = pct(latencies)

        # FAISS exact vs IVF vs HNSW on the projected query vectors.
        qv = projected_vectors(index, q_tokens)
        exact_ids, _ = index.dense.search(qv, 10)
        ids = np.array([r.chunk_id for r in records])
        for kind in ("ivf", "hnsw"):
            t0 = time.perf_counter()
            approx = DenseIndex(DIM, exact_limit=0, approx_kind=kind)
            approx.upsert(ids, vectors)
            out[f"{kind}_build_s"] = time.perf_counter() - t0
            found, latencies = [], []
            for i in range(len(qv)):
                t0 = time.perf_counter()
                found.append(approx.search(qv[i : i + 1], 10)[0][0])
                latencies.append((time.perf_counter() - t0) * 1e3)
            recall = np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found, exact_ids, strict=True)])
            out[f"{kind}_recall@10"], (out[f"{kind}_p50"], _) = float(recall), pct(latencies)
        latencies = []
        for i in range(len(qv)):
            t0 = time.perf_counter()
            index.dense.search(qv[i : i + 1], 10)
            latencies.append((time.perf_counter() - t0) * 1e3)
        out["flat_p50"], _ = pct(latencies)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=100)
    parser.add_argument("--rank-bm25-queries", type=int, default=10)
    parser.add_argument("--reranker", default=None, help="cross-encoder; default: MiniLM weights (same size)")
    parser.add_argument("--threads", type=int, default=None, help="torch and FAISS threads (default: theirs)")
    args = parser.parse_args()
    if args.threads:
        import faiss
        import torch

        torch.set_num_threads(args.threads)
        faiss.omp_set_num_threads(args.threads)

    sample = real_chunks(2_000)
    rng = random.Random(0)
    queries = [" ".join(r.text.split()[:8]) for r in rng.sample(sample, args.queries)]
    embedder = Embedder(DEFAULT_EMBEDDING_MODEL)
    t0 = time.perf_counter()
    embedder.encode([indexed_text(r) for r in sample[:256]])
    embed_rate = 256 / (time.perf_counter() - t0)
    # A reranker from train-reranker brings its max_length; the stand-in uses that command's default.
    reranker = (
        Reranker(args.reranker)
        if args.reranker
        else Reranker(resolve_model_path(DEFAULT_EMBEDDING_MODEL), max_length=128)
    )

    results = []
    for n in args.sizes:
        console.print(f"[bold]{n} chunks[/bold] …")
        results.append(bench_size(n, queries, reranker, args.rank_bm25_queries))
        print_table(results, args, embed_rate)  # after each size, so a long run's early numbers are kept


def print_table(results: list[dict], args: argparse.Namespace, embed_rate: float) -> None:

    threads = args.threads or "default"
    title = f"bench/retrieval · {args.queries} queries · {threads} threads · MiniLM {embed_rate:.0f} chunks/s"
    table = Table(title=title)
    table.add_column("metric")
    for r in results:
        table.add_column(f"{r['n']:,} chunks", justify="right")
    rows = [
        ("BM25 build (tokenized → matrix) s", "bm25_build_s", "{:.2f}"),
        ("FAISS flat build s", "faiss_flat_build_s", "{:.2f}"),
        ("save s / load s", None, None),
        ("BM25 queries/s (ours)", "bm25_qps", "{:.0f}"),
        ("rank_bm25 queries/s", "rank_bm25_qps", "{:.2f}"),
        ("BM25 speed-up vs rank_bm25", "bm25_ratio", "{:.0f}×"),
        *[(f"{m} p50 / p95 ms", m, None) for m in MODES],
        ("FAISS flat p50 ms", "flat_p50", "{:.2f}"),
        ("IVF build s / recall@10 / p50 ms", "ivf", None),
        ("HNSW build s / recall@10 / p50 ms", "hnsw", None),
    ]
    for label, key, fmt in rows:
        cells = []
        for r in results:
            if key is None:
                cells.append(f"{r['save_s']:.2f} / {r['load_s']:.2f}")
            elif key in MODES:
                cells.append(f"{r[key + '_p50']:.1f} / {r[key + '_p95']:.1f}")
            elif key in ("ivf", "hnsw"):
                cells.append(
                    f"{r[key + '_build_s']:.1f} / {r[key + '_recall@10']:.3f} / {r[key + '_p50']:.2f}"
                )
            else:
                cells.append(fmt.format(r[key]))
        table.add_row(label, *cells)
    console.print(table)


if __name__ == "__main__":
    main()
