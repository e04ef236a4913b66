"""Passages cut to the sentences that bear on the question (extractive context compression).

Three retrieved passages hold about 16 sentences. A 135M model that reads them all quotes the
sentence that answers only about a quarter of the time, though the answer is among them for 88% of
the dev questions. Ranked by the question's words, the answering sentence is the first for 61% of
them and among the first three for 81% (docs/benchmarks.md, "Focused passages"). So the prompt keeps
the best few sentences: each passage keeps its chosen sentences best first (a small model quotes the
first sentence it reads: 37.7% of factoids against 33.3% in document order), with "…" where text was
left out, and passages come in the order of their best sentence.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

from ember.agents.citations import content_words, split_sentences
from ember.retrieval.types import Hit

# Extra scores for the sentences, higher is closer to the question (for example an embedding
# model's cosine similarity): question, sentences -> one score per sentence.
SentenceScorer = Callable[[str, list[str]], list[float]]
ELISION = " … "


def word_scores(question: str, sentences: list[str]) -> list[float]:
    """The question's content words each sentence holds, weighted by their rarity among the
    sentences (a word that every sentence holds, such as the topic, tells them apart least), scaled so
    the best sentence scores 1."""
    asked = content_words(question)
    words = [content_words(s) & asked for s in sentences]
    rarity = {w: math.log(1 + len(sentences) / (1 + sum(w in held for held in words))) for w in asked}
    scores = [sum(rarity[w] for w in held) for held in words]
    top = max(scores, default=0.0)
    return [score / top if top > 0 else 0.0 for score in scores]


def focus_passages(
    question: str, hits: list[Hit], sentences: int, extra_scorer: SentenceScorer | None = None
) -> list[Hit]:
    """``hits`` cut to the ``sentences`` sentences that score best against ``question`` (word
    overlap, plus ``extra_scorer`` where given); ties go to the better-ranked hit, then to the earlier
    sentence."""
    if sentences < 1:
        raise ValueError(f"a focused prompt needs at least one sentence, got {sentences}")
    units = [(h, i, text) for h, hit in enumerate(hits) for i, text in enumerate(split_sentences(hit.text))]
    if not units:
        return hits
    texts = [text for _, _, text in units]
    scores = word_scores(question, texts)
    if extra_scorer is not None:
        scores = [a + b for a, b in zip(scores, extra_scorer(question, texts), strict=True)]
    ranked = sorted(range(len(units)), key=lambda u: -scores[u])[:sentences]  # stable: ties keep order
    kept: dict[int, list[int]] = {}
    for u in ranked:  # insertion order: passages by their best sentence
        kept.setdefault(units[u][0], []).append(units[u][1])
    return [_keep_sentences(hits[h], chosen) for h, chosen in kept.items()]


def _keep_sentences(hit: Hit, chosen: list[int]) -> Hit:
    """``hit`` with only the sentences numbered ``chosen`` (in that order), "…" marking each cut."""
    parts = split_sentences(hit.text)
    text = "" if chosen[0] == 0 else ELISION.lstrip()
    for previous, index in zip([None, *chosen], chosen, strict=False):
        if previous is not None:
            text += " " if index == previous + 1 else ELISION
        text += parts[index]
    if chosen[-1] < len(parts) - 1:
        text += ELISION.rstrip()
    return replace(hit, text=text)
