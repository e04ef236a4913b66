"""Making a follow-up question stand alone before retrieval.

A question counts as a follow-up only when it refers back to the previous turn:
- a pronoun or demonstrative with nothing in the question it could stand for ("Can it be nested?",
  "How does that differ from nonlocal?"),
- ellipsis: "and …", "what about …", "how about …", or a short fragment without a verb ("In a generator?"),
- or, given a ``grounding`` score, a question that finds no close passage on its own while searching it
  together with the previous turn does ("What is the syntax?").
Any other question is searched as asked, however short: "What does the pass statement do?" names its
subject. A follow-up is searched together with the previous stand-alone query, or rewritten by an LLM
that can do it well (SmolLM2-135M cannot: it answers the question or drops the subject).
"""

from __future__ import annotations

import re
from collections.abc import Callable

from ember.agents.backends import ChatBackend
from ember.agents.prompts import REWRITE_SYSTEM, rewrite_user_message

Grounding = Callable[[str], float]  # text → its best dense similarity to any retrievable passage

MAX_QUERY_WORDS = 40
MAX_FRAGMENT_WORDS = 4
LOW_GROUNDING = 0.4  # all-MiniLM-L6-v2 cosine: independent questions in bench/followups score 0.46+
GROUNDING_GAIN = 0.15  # ... and by how much searching it with the previous turn must get closer

_TOKEN = re.compile(r"[a-z0-9]+(?:'[a-z]+)?|[,;]")
_PRONOUNS = frozenset("it it's its itself they them their theirs themselves".split())
_DEMONSTRATIVES = frozenset("this that these those".split())
_PLACES = frozenset("there here".split())  # at the end of a question: "What does a step do there?"
# Words that cannot be an antecedent, nor make a demonstrative a relative "that" ("the method that...").
_FUNCTION_WORDS = frozenset(
    "a an the and or but of to in on for by with as at from is are was were be been being do does did "
    "can could would should will shall may might must has have had how what when where why which who whom "
    "whose i you we not no so if then than also about into over what's how's where's it's that's".split()
)
# Where a second clause starts: a pronoun after one may stand for a noun before it ("open a file and read
# it").
_CLAUSE_BREAKS = frozenset(", ; and or but when if because so then while".split())
_VERBS = frozenset(
    "is are was were be do does did can could should would will shall may might must has have had "
    "mean means work works happen happens return returns call calls use uses used make makes get gets "
    "raise raises define defines create creates explain describe show give list compare tell find write "
    "run runs handle handles differ differs".split()
)
_ELLIPSIS = re.compile(r"^\s*(?:and|but|also|or|what about|how about|what of|same for|then what)\b", re.I)
# "Is it possible to ...", "it is true that ...": a placeholder "it" that refers to nothing.
_PLACEHOLDER_IT = re.compile(r"\bit(?:'s| is| was)? \w+ (?:to|that)\b")


def _has_antecedent(before: list[str]) -> bool:
    """A noun-like word in an earlier clause than the pronoun: "What methods does it call?" has none."""
    breaks = [i for i, token in enumerate(before) if token in _CLAUSE_BREAKS]
    return bool(breaks) and any(w not in _FUNCTION_WORDS for w in before[: breaks[-1]] if w not in ",;")


def _pronoun_without_antecedent(tokens: list[str], text: str) -> bool:
    for i, token in enumerate(tokens):
        if token in _PRONOUNS and not _has_antecedent(tokens[:i]) and not _PLACEHOLDER_IT.search(text):
            return True
        if token in _DEMONSTRATIVES and (i == 0 or tokens[i - 1] in _FUNCTION_WORDS):
            return True
    return bool(tokens) and tokens[-1] in _PLACES


def refers_back(question: str) -> str:
    """Why ``question`` cannot stand alone ("pronoun", "ellipsis", "fragment"), or "" when it can."""
    text = question.lower().replace("’", "'")
    tokens = _TOKEN.findall(text)
    if _ELLIPSIS.search(text):
        return "ellipsis"
    if _pronoun_without_antecedent(tokens, text):
        return "pronoun"
    words = [t for t in tokens if t not in ",;"]
    if len(words) <= MAX_FRAGMENT_WORDS and not _VERBS.intersection(words):
        return "fragment"
    return ""


def follow_up_reason(question: str, previous_query: str | None, grounding: Grounding | None = None) -> str:
    """Why ``question`` is a follow-up of the turn searched as ``previous_query``, or "" when it is not.

    With ``grounding``, a question that refers back by none of its words still counts ("grounding") when
    it finds no close passage alone and clearly closer ones together with the previous turn."""
    if not previous_query:
        return ""
    reason = refers_back(question)
    if reason or grounding is None:
        return reason
    alone = grounding(question)
    if alone < LOW_GROUNDING and grounding(joined(previous_query, question)) >= alone + GROUNDING_GAIN:
        return "grounding"
    return ""


def joined(previous_query: str, question: str) -> str:
    """The heuristic rewrite: the question after the end of the previous stand-alone query."""
    context = previous_query.split()[-MAX_QUERY_WORDS:]
    return f"{' '.join(context)} {question}"


def llm_rewrite(llm: ChatBackend, question: str, previous_query: str) -> str | None:
    """``question`` rewritten by ``llm`` to name its subject, or None when the reply is no usable query."""
    messages = [
        {"role": "system", "content": REWRITE_SYSTEM},
        {"role": "user", "content": rewrite_user_message(previous_query, question)},
    ]
    reply = llm.chat(messages, max_tokens=64, temperature=0.0).text.strip().strip('"')
    if not reply or "\n" in reply or len(reply.split()) > MAX_QUERY_WORDS:
        return None
    return reply


def standalone_query(
    question: str,
    previous_query: str | None,
    grounding: Grounding | None = None,
    llm: ChatBackend | None = None,
) -> str:
    """The query to search for ``question`` given the previous turn's stand-alone query (or None).

    ``llm``: a model trusted to rewrite follow-ups; without one, or when its reply is unusable, a
    follow-up is searched together with the previous query."""
    if not follow_up_reason(question, previous_query, grounding):
        return question
    rewritten = llm_rewrite(llm, question, previous_query) if llm is not None else None
    return rewritten or joined(previous_query, question)
