"""Reading a verdict out of a judge's reply. Anything ambiguous is None (unparsed), never a win.

Read in this order: bracketed tags — ``[[4]]``, ``[[PASS]]``, ``[[A]]``, MT-Bench's form — else
labelled values ("Rating: 4", "Verdict: B"), else a reply that is the bare value alone or starts with
it ("A: because...", "PASS. The numbers agree"). Two different values in one reply are a
contradiction, and unparsed.
"""

from __future__ import annotations

import re

SCALE = "1-5"
PASS_FAIL = "pass/fail"
RUBRICS = (SCALE, PASS_FAIL)

_TAG = re.compile(r"\[\[\s*([^\[\]]{1,12}?)\s*\]\]")
_LABELLED = re.compile(
    r"\b(?:rating|score|grade|verdict|decision|final answer|winner)\s*(?:is)?\s*[:=]?\s*\**\s*"
    r"\[?\s*([A-Za-z0-9]+(?:\s*/\s*5)?)",
    re.IGNORECASE,
)
_LEAD = re.compile(r"\s*\**([A-Za-z0-9]+)\**\s*(?:[:)\n]|\.(?!\d)|$)")
_GRADE_WORDS = {"1": 1, "2": 2, "3": 3, "4": 4, "5": 5}
_PASS_WORDS = {
    "pass": True,
    "passed": True,
    "correct": True,
    "fail": False,
    "failed": False,
    "incorrect": False,
}
_PREFERENCE_WORDS = {"a": "A", "b": "B", "c": "tie", "tie": "tie", "draw": "tie", "equal": "tie"}


def _candidates(text: str) -> list[str]:
    """The bracketed tags if any, else the labelled values, else the whole reply when it is one word."""
    tags = _TAG.findall(text)
    if tags:
        return tags
    labelled = _LABELLED.findall(text)
    if labelled:
        return labelled
    bare = text.strip().strip(".*").strip()
    if bare and len(bare.split()) == 1:
        return [bare]
    lead = _LEAD.match(text)  # "A: because ...", "PASS. The numbers agree"
    return [lead.group(1)] if lead else []


def _one(values: list) -> object | None:
    """The single value the reply commits to, or None when it gives none or contradicts itself."""
    distinct = set(values)
    return distinct.pop() if len(distinct) == 1 else None


def parse_grade(text: str, rubric: str) -> int | bool | None:
    """1..5 for the scale rubric, True / False for pass/fail, None when the reply commits to nothing."""
    if rubric not in RUBRICS:
        raise ValueError(f"rubric must be one of {', '.join(RUBRICS)}, got {rubric!r}")
    words = [c.lower().replace(" ", "").removesuffix("/5") for c in _candidates(text)]
    table = _GRADE_WORDS if rubric == SCALE else _PASS_WORDS
    if any(w not in table for w in words):
        return None
    return _one([table[w] for w in words])


def parse_preference(text: str) -> str | None:
    """ "A", "B" or "tie" (MT-Bench's [[C]]), or None when the reply commits to nothing."""
    words = [c.lower().strip() for c in _candidates(text)]
    if any(w not in _PREFERENCE_WORDS for w in words):
        return None
    return _one([_PREFERENCE_WORDS[w] for w in words])
