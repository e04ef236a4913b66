"""Making a follow-up question stand alone before retrieval.

A cheap deterministic heuristic rather than an LLM rewrite: SmolLM2-135M rewrites questions unreliably
(it answers them, or drops the subject), and a retrieval query only needs the subject back. A question
that refers back (a pronoun, "what about ...") or is too short to name its subject is searched together
with the previous stand-alone query; any other question is searched as asked.
"""

from __future__ import annotations

import re

from ember.agents.citations import content_words

_REFERS_BACK = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|him|his|her|there|same|also|"
    r"what about|how about|and)\b",
    re.IGNORECASE,
)
MIN_SUBJECT_WORDS = 3  # fewer content words than this cannot name a subject
MAX_QUERY_WORDS = 40


def standalone_query(question: str, previous_query: str | None) -> str:
    """The query to search for ``question`` given the previous turn's stand-alone query (or None)."""
    if not previous_query:
        return question
    if _REFERS_BACK.search(question) or len(content_words(question)) < MIN_SUBJECT_WORDS:
        context = previous_query.split()[-MAX_QUERY_WORDS:]
        return f"{' '.join(context)} {question}"
    return question
