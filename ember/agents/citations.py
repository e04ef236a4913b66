"""Citation markers in an answer: parse, verify against the passages shown, repair, quote.

Verification: every ``[n]`` must name a passage the model was shown; an answer that cites nothing is
flagged. Repair (small models often forget to cite): each uncited sentence gets ``[n]`` for the passage
whose content words it overlaps most, when the overlap is substantial; markers naming no passage are
dropped. Both are deterministic and reported in the flags, so their frequency can be measured.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ember.agents.types import I_DONT_KNOW, Citation
from ember.retrieval.types import Hit

MARKER = re.compile(r"\[(\d+(?:\s*,\s*\d+)*)\]")
_SENTENCE = re.compile(r"(?<=[.!?])\s+|\n\s*\n")  # a single newline is a wrapped line
_MARKUP = re.compile(r"</?passages?\b[^>]*>")  # small models echo the prompt's delimiters
_WORD = re.compile(r"[a-z0-9]+(?:[.,][0-9]+)*")
_STOPWORDS = frozenset(
    "a an the and or of to in on for by with as at from is are was were be been it its this that these "
    "those which who what when where how why than then there their they he she we you i not no do does did "
    "has have had can could would should will may might also such into over about only more most other some "
    "any".split()
)
MIN_OVERLAP = 2  # content words shared before a sentence is attributed to a passage
MIN_SHARE = 0.3  # ... and at least this share of the sentence's content words


def content_words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOPWORDS and len(w) > 1}


def split_sentences(text: str) -> list[str]:
    """The non-empty sentences of a passage, stripped."""
    return [s.strip() for s in _SENTENCE.split(text) if s.strip()]


def cited_numbers(text: str) -> list[int]:
    numbers = []
    for match in MARKER.finditer(text):
        numbers.extend(int(n) for n in match.group(1).split(","))
    return numbers


def is_i_dont_know(text: str) -> bool:
    return text.strip().lower().rstrip(".!").replace("’", "'") in {"i don't know", "i do not know"}


@dataclass
class Verified:
    text: str
    citations: list[Citation]
    flags: list[str] = field(default_factory=list)


def _best_passage(sentence: str, passages: list[Hit]) -> int | None:
    words = content_words(MARKER.sub("", sentence))
    if not words:
        return None
    scored = [(len(words & content_words(p.text)), -i) for i, p in enumerate(passages)]
    overlap, negative_index = max(scored)
    if overlap >= MIN_OVERLAP and overlap / len(words) >= MIN_SHARE:
        return -negative_index + 1
    return None


def _quote(passage: Hit, claim: str) -> str:
    """The passage sentence sharing the most content words with ``claim`` (its first one on ties)."""
    sentences = split_sentences(passage.text) or [passage.text]
    words = content_words(claim)
    best = max(sentences, key=lambda s: (len(words & content_words(s)), -sentences.index(s)))
    return best.strip(" …")[:300]  # without the marks of text a focused passage left out


def verify(answer: str, passages: list[Hit], repair: bool = True) -> Verified:
    """Check the answer's citations against ``passages`` (numbered from 1, in prompt order)."""
    text = _MARKUP.sub("", answer).strip()
    if is_i_dont_know(text) or not text:
        return Verified(I_DONT_KNOW if not text else text, [], [] if text else ["empty_answer"])
    flags: list[str] = []
    invalid = [n for n in cited_numbers(text) if not 1 <= n <= len(passages)]
    if invalid:
        flags.append("invalid_citations")
        if repair:
            text = MARKER.sub(lambda m: _keep_valid(m, len(passages)), text)
    if not cited_numbers(text):
        flags.append("no_citations")
        if repair and passages:
            repaired = _attach_citations(text, passages)
            if cited_numbers(repaired):
                text = repaired
                flags.append("citations_repaired")
    return Verified(text, _citations(text, passages), flags)


def _keep_valid(match: re.Match, count: int) -> str:
    kept = [n for n in match.group(1).split(",") if 1 <= int(n) <= count]
    return f"[{', '.join(n.strip() for n in kept)}]" if kept else ""


def _attach_citations(text: str, passages: list[Hit]) -> str:
    pieces = []
    for sentence in _SENTENCE.split(text):
        n = _best_passage(sentence, passages) if sentence.strip() else None
        if n is None:
            pieces.append(sentence)
            continue
        stripped = sentence.rstrip()
        end = len(stripped) - 1 if stripped and stripped[-1] in ".!?" else len(stripped)
        pieces.append(f"{stripped[:end]} [{n}]{stripped[end:]}")
    return " ".join(p for p in pieces if p)


def _citations(text: str, passages: list[Hit]) -> list[Citation]:
    claims: dict[int, list[str]] = {}
    for sentence in _SENTENCE.split(text):
        for n in cited_numbers(sentence):
            claims.setdefault(n, []).append(MARKER.sub("", sentence))
    citations = []
    for n in sorted(claims):
        hit = passages[n - 1]
        citations.append(
            Citation(
                n, hit.chunk_id, hit.document_id, hit.title, hit.location, _quote(hit, " ".join(claims[n]))
            )
        )
    return citations
