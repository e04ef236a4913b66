"""`ember eval answers`: each QA item asked through the service (RAG), scored and appended to the run.

Per item: match (the headline: quantities for numeric and numeric-short answers, else the text), exact
text containment, token F1, abstention, citation validity and ALCE support, whether the gold passages
were retrieved at the context depth and reached the prompt, and latency. With a judge, also the judge's
grade of the answer against the gold one (``run_judging.grade_fields``): the item's thread answers
under one semaphore (questions in flight) and is judged under another (verdicts in flight), so a slow
judge does not hold up the answering.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ember.agents.citations import is_i_dont_know
from ember.evals.answer_scoring import answer_match, exact_match, looped, numeric_match, token_f1
from ember.evals.citation_support import SupportScorer, citation_support, markers_resolve
from ember.evals.datasets import QAItem
from ember.evals.judge.judge import Judge
from ember.evals.judge.run_judging import grade_fields
from ember.evals.judge.verdicts import SCALE
from ember.evals.timed_ask import timed_ask

if TYPE_CHECKING:
    from ember.platform.service import EmberService
    from ember.platform.types import Answer


@dataclass
class AnswersContext:
    service: EmberService
    collection: str
    scorer: SupportScorer
    depth: int  # passages retrieved for the prompt: retrieval recall is measured there
    document_keys: dict[int, set[str]]  # document id → corpus id and title
    sampling: dict[str, Any]
    answering: threading.Semaphore  # questions in flight at the LLM (--concurrency)
    judging: threading.Semaphore  # verdicts in flight (--judge-concurrency)
    judge: Judge | None = None
    judge_rubric: str = SCALE


def _gold_share(relevant: list[str], documents: list[int], keys: dict[int, set[str]]) -> float | None:
    """The share of the gold passages (relevant_ids) among ``documents``; None without gold ids."""
    if not relevant:
        return None
    found = set().union(*(keys.get(d, set()) for d in documents)) if documents else set()
    return sum(r in found for r in relevant) / len(relevant)


def _citation_fields(ctx: AnswersContext, answer: Answer) -> dict[str, Any]:
    by_number = {c.n: c for c in answer.citations}
    prompted = set(answer.prompt_chunk_ids)

    def passage_of(n: int) -> str | None:
        citation = by_number.get(n)
        if citation is None or (prompted and citation.chunk_id not in prompted):
            return None
        return ctx.service.get_chunk(citation.chunk_id).text

    resolve = markers_resolve(
        answer.text, [n for n, c in by_number.items() if not prompted or c.chunk_id in prompted]
    )
    support = citation_support(answer.text, passage_of, ctx.scorer)
    return {
        "cites": bool(answer.citations),
        "citation_valid": None if resolve is None else resolve and "invalid_citations" not in answer.flags,
        "citations": support.citations,
        "support_precision": support.supported_citations / support.citations if support.citations else None,
        "support_recall": support.supported_sentences / support.sentences if support.sentences else None,
    }


def text_scores(response: str, gold: str | float, answer_type: str) -> dict[str, Any]:
    """The scores read from the answer's text alone (what `ember eval rescore` recomputes)."""
    return {
        "match": answer_match(response, gold, answer_type),
        "exact": exact_match(response, str(gold)),
        "numeric": numeric_match(response, gold) if answer_type == "numeric" else None,
        "f1": token_f1(response, str(gold)),
    }


def answer_item(ctx: AnswersContext, item: QAItem) -> dict[str, Any]:
    with ctx.answering:
        timed = timed_ask(ctx.service, item.question, ctx.collection, False, **ctx.sampling)
    answer = timed.answer
    tokens = answer.usage.get("completion_tokens", 0)
    abstained = is_i_dont_know(answer.text)
    hits = ctx.service.search(item.question, [ctx.collection], k=ctx.depth).hits
    gold = str(item.answer)
    judged: dict[str, Any] = {}
    if ctx.judge is not None:
        with ctx.judging:  # while this answer is judged, another question can be answered
            verdict = ctx.judge.grade(item.question, answer.text, gold, ctx.judge_rubric)
        judged = grade_fields(verdict, ctx.judge_rubric)
    return {
        "question": item.question,
        "gold": item.answer,
        "answer_type": item.answer_type,
        "response": answer.text,
        **text_scores(answer.text, item.answer, item.answer_type),
        "abstained": abstained,
        "false_abstention": abstained and bool(gold.strip()),
        **_citation_fields(ctx, answer),
        "retrieval_recall": _gold_share(item.relevant_ids, [h.document_id for h in hits], ctx.document_keys),
        "gold_in_prompt": _gold_in_prompt(item.relevant_ids, answer, ctx.document_keys),
        "flags": answer.flags,
        "looped": looped(answer.text, answer.flags, tokens >= ctx.sampling["max_tokens"]),
        "ttft_s": timed.first_token_s,
        "total_s": timed.total_s,
        "completion_tokens": tokens,
        "tokens_per_s": timed.tokens_per_s,
        **judged,
    }


def _gold_in_prompt(relevant: list[str], answer: Answer, keys: dict[int, set[str]]) -> bool | None:
    """At least one gold passage was in the prompt (the cited documents when the Answer does not say)."""
    documents = answer.prompt_document_ids or [c.document_id for c in answer.citations]
    share = _gold_share(relevant, documents, keys)
    return None if share is None else share > 0
