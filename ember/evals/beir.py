"""BEIR-format datasets: corpus.jsonl, queries.jsonl and qrels/*.tsv (query-id, corpus-id, score)."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from ember.evals.jsonl import read_jsonl


@dataclass
class BeirDataset:
    name: str
    corpus: dict[str, dict]  # corpus id → {"title": ..., "text": ...}
    queries: dict[str, str]  # query id → text (only queries that have judgements)
    qrels: dict[str, dict[str, int]]  # query id → corpus id → relevance


def read_qrels(directory: Path, split: str | None = None) -> dict[str, dict[str, int]]:
    files = sorted((directory / "qrels").glob("*.tsv"))
    if split:
        files = [f for f in files if f.stem == split]
    if not files:
        raise ValueError(f"{directory}/qrels has no {split or '*'}.tsv judgements")
    qrels: dict[str, dict[str, int]] = {}
    for path in files:
        with open(path, encoding="utf-8", newline="") as f:
            for row in csv.DictReader(f, delimiter="\t"):
                try:
                    qrels.setdefault(row["query-id"], {})[row["corpus-id"]] = int(row["score"])
                except (KeyError, TypeError, ValueError) as exc:
                    raise ValueError(f"{path}: rows need query-id, corpus-id and an integer score") from exc
    return qrels


def load_beir(directory: Path, corpus_file: Path | None = None, split: str | None = None) -> BeirDataset:
    """Load a BEIR directory; ``corpus_file`` overrides ``directory/corpus.jsonl`` (shared corpora)."""
    directory = Path(directory)
    corpus_path = Path(corpus_file) if corpus_file else directory / "corpus.jsonl"
    for path in (corpus_path, directory / "queries.jsonl"):
        if not path.is_file():
            hint = " (pass --corpus FILE for a corpus shared by several sets)" if path == corpus_path else ""
            raise ValueError(f"{path} does not exist{hint}")
    corpus = {}
    for row in read_jsonl(corpus_path):
        if "_id" not in row or "text" not in row:
            raise ValueError(f"{corpus_path}: every document needs '_id' and 'text'")
        corpus[str(row["_id"])] = {"title": row.get("title", ""), "text": row["text"]}
    qrels = read_qrels(directory, split)
    queries = {str(r["_id"]): r["text"] for r in read_jsonl(directory / "queries.jsonl")}
    unknown = {d for judged in qrels.values() for d in judged} - corpus.keys()
    if unknown:
        raise ValueError(
            f"qrels name {len(unknown)} documents missing from {corpus_path}, e.g. {sorted(unknown)[:3]}"
        )
    return BeirDataset(directory.name, corpus, {q: t for q, t in queries.items() if q in qrels}, qrels)
