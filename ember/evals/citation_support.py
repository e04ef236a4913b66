"""Citation support in the ALCE sense: does each cited passage support the sentence that cites it?

Support precision: the share of (sentence, cited passage) pairs whose passage supports the sentence.
Support recall: the share of answer sentences supported by at least one of their citations (a sentence
citing nothing is unsupported). Support is an entailment scorer's call: the trained cross-encoder when
one is installed (its score above a threshold), else content-word overlap; a sentence stating quantities
is supported only by a passage holding every one of them (a string check a relevance model cannot do).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from ember.agents.citations import content_words, is_i_dont_know
from ember.evals.answer_scoring import quantities, quantity_matches, strip_citations

_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n+")
_MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
CROSS_ENCODER_THRESHOLD = 0.5  # sigmoid score of a cross-encoder trained on relevance labels
OVERLAP_THRESHOLD = 0.6  # share of the sentence's content words found in the passage


class SupportScorer(Protocol):
    name: str

    def supports(self, passage: str, claim: str) -> bool: ...


@dataclass
class OverlapSupport:
    threshold: float = OVERLAP_THRESHOLD
    name: str = f"content-word overlap >= {OVERLAP_THRESHOLD} (no cross-encoder installed)"

    def supports(self, passage: str, claim: str) -> bool:
        words = content_words(claim)
        return bool(words) and len(words & content_words(passage)) / len(words) >= self.threshold


class CrossEncoderSupport:
    def __init__(self, model: str, threshold: float = CROSS_ENCODER_THRESHOLD) -> None:
        from ember.retrieval.rerank import Reranker

        self.reranker, self.threshold = Reranker(model), threshold
        self.name = f"cross-encoder {model} (score >= {threshold})"

    def supports(self, passage: str, claim: str) -> bool:
        return float(self.reranker.scores(claim, [passage])[0]) >= self.threshold


def support_scorer(reranker_path: str | None) -> SupportScorer:
    return CrossEncoderSupport(reranker_path) if reranker_path else OverlapSupport()


def quantities_in(passage: str, claim: str) -> bool:
    """Every quantity the claim states appears in the passage (true for a claim without numbers)."""
    found = quantities(passage)
    return all(any(quantity_matches(p, q) for p in found) for q in quantities(claim))


@dataclass(frozen=True)
class CitationSupport:
    sentences: int
    supported_sentences: int
    citations: int
    supported_citations: int


def cited_sentences(text: str) -> list[tuple[str, list[int]]]:
    """Each sentence of an answer (markers removed) with the passage numbers it cites."""
    pieces = []
    for sentence in _SENTENCE.split(text):
        numbers = [int(n) for m in _MARKER.finditer(sentence) for n in m.group(1).split(",")]
        claim = strip_citations(sentence).strip()
        if claim and any(c.isalnum() for c in claim):
            pieces.append((claim, numbers))
    return pieces


def citation_support(
    text: str, passage_of: Callable[[int], str | None], scorer: SupportScorer
) -> CitationSupport:
    """Support counts for one answer; ``passage_of(n)`` is the text of citation [n] (None: unresolved)."""
    if is_i_dont_know(text):
        return CitationSupport(0, 0, 0, 0)
    sentences = supported_sentences = citations = supported_citations = 0
    for claim, numbers in cited_sentences(text):
        sentences += 1
        verdicts = []
        for n in dict.fromkeys(numbers):
            passage = passage_of(n)
            verdicts.append(
                passage is not None and quantities_in(passage, claim) and scorer.supports(passage, claim)
            )
        citations += len(verdicts)
        supported_citations += sum(verdicts)
        supported_sentences += any(verdicts)
    return CitationSupport(sentences, supported_sentences, citations, supported_citations)


def markers_resolve(text: str, cited: Sequence[int]) -> bool | None:
    """Every [n] in the text is one of the answer's citations; None when the text cites nothing."""
    numbers = [int(n) for m in _MARKER.finditer(text) for n in m.group(1).split(",")]
    return all(n in cited for n in numbers) if numbers else None
