"""Factoid questions answered through the RAG graph: the dataset, one timed and scored run, the summary.

A run records the time to the first token and to the answer, whether the answer matches the gold one,
how many cited passages contain that gold answer, the answer's flags, and the question's top dense
score (what the relevance threshold is calibrated on).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ember.evals.answer_scoring import answer_match, passage_contains
from ember.evals.jsonl import read_jsonl
from ember.evals.summary_format import median, share
from ember.evals.timed_ask import timed_ask

if TYPE_CHECKING:
    from ember.platform.service import EmberService


@dataclass(frozen=True)
class FactoidQuestion:
    id: str
    question: str
    answer: float | str
    answer_type: str  # "numeric", or anything else for text containment


@dataclass(frozen=True)
class FactoidResult:
    id: str
    ttft_s: float
    total_s: float
    match: bool
    cited: int
    cited_valid: int  # cited passages that contain the gold answer
    flags: list[str]
    top_dense: float
    completion_tokens: int
    answer: str


def load_factoids(path: Path, limit: int | None = None) -> list[FactoidQuestion]:
    """Rows with id, question, answer and answer_type; the first ``limit`` of them when given."""
    rows = read_jsonl(path)[: limit or None]
    try:
        return [
            FactoidQuestion(str(row["id"]), row["question"], row["answer"], row["answer_type"])
            for row in rows
        ]
    except KeyError as exc:
        raise ValueError(f"{path}: every question needs id, question, answer and answer_type") from exc


def run_factoid(
    service: EmberService, collection: str, item: FactoidQuestion, max_tokens: int
) -> FactoidResult:
    timed = timed_ask(service, item.question, collection, False, max_tokens)
    answer = timed.answer
    passages = [service.get_chunk(c.chunk_id).text for c in answer.citations]
    hits = service.search(item.question, [collection], k=1, mode="dense").hits
    return FactoidResult(
        id=item.id,
        ttft_s=timed.first_token_s,
        total_s=timed.total_s,
        match=answer_match(answer.text, item.answer, item.answer_type),
        cited=len(answer.citations),
        cited_valid=sum(passage_contains(p, item.answer, item.answer_type) for p in passages),
        flags=answer.flags,
        top_dense=hits[0].score if hits else 0.0,
        completion_tokens=answer.usage["completion_tokens"],
        answer=answer.text,
    )


def summarize_factoids(results: list[FactoidResult]) -> list[tuple[str, str]]:
    """(metric, value) rows: latency, match, citation validity and repair, abstentions, dense scores."""
    n = len(results)
    ttft = sorted(r.ttft_s for r in results)
    dense = sorted(r.top_dense for r in results)
    return [
        (
            "RAG time to first token, median / p90 (s)",
            f"{median(ttft):.1f} / {ttft[int(0.9 * (n - 1))]:.1f}" if n else "n/a",
        ),
        ("RAG total latency, median (s)", f"{median([r.total_s for r in results]):.1f}"),
        ("tokens generated, median", f"{median([r.completion_tokens for r in results]):.0f}"),
        ("exact/numeric match", share(sum(r.match for r in results), n)),
        (
            "citation validity (cited passages containing the answer)",
            share(sum(r.cited_valid for r in results), sum(r.cited for r in results)),
        ),
        (
            "answers the model cited itself",
            share(sum("no_citations" not in r.flags and r.cited > 0 for r in results), n),
        ),
        (
            "answers whose citations were repaired",
            share(sum("citations_repaired" in r.flags for r in results), n),
        ),
        ("answers citing nothing after repair", share(sum(r.cited == 0 for r in results), n)),
        (
            '"I don\'t know" (relevance threshold)',
            share(sum("no_relevant_passages" in r.flags for r in results), n),
        ),
        (
            "top dense score: min / p10 / median",
            f"{dense[0]:.2f} / {dense[int(0.1 * (n - 1))]:.2f} / {median(dense):.2f}" if n else "n/a",
        ),
    ]
