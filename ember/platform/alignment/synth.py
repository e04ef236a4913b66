"""Grounded training data from a collection's own passages, in the formats the RAG graph and the agent use.

- RAG examples: a question made from a passage (a number asked for, or a few-word span of a sentence),
  a context of retrieved passages holding the gold one among distractors (RAG_SYSTEM + rag_user_message),
  and a short target that quotes the supporting sentence and cites it as [n].
- Abstentions: the same question with every passage of the gold document removed; the target is
  "I don't know."
- Agent traces: two number facts from different documents, each found with the real ``search`` tool
  under a short keyword query (not the task's sentence), combined by the real calculator (sum,
  difference, product or ratio), then a cited answer.
- DPO pairs: the target against a failing variant: no citation, a citation of the wrong passage, a wrong
  number, another sentence of the gold passage (cited, but without the asked number), a repetition loop,
  "I don't know" while the gold passage is there, or (for abstentions) an answer the passages do not
  support. The recipe swaps in a model's own failing samples where it writes one (``own_samples``).
- Replay: whole passages as plain text (TRL's ``text`` rows), a small share of the SFT rows, so the tuned
  model's general text distribution moves less.

Questions and targets come from prose sentences only: headings, list markers, code, tables and LaTeX are
left out, so a target never quotes a heading.

Documents in the held-out slice are never a question's source nor a distractor; their questions come back
separately, for measuring the gain on text the model was not trained on.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ember.agents.prompts import AGENT_SYSTEM, RAG_SYSTEM, rag_user_message
from ember.agents.tools import SCHEMAS, Toolbox
from ember.retrieval.types import Hit

IDK = "I don't know."
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# A number worth asking for: not glued to a word or a hyphen ("GPT-3", "4-bit", "A100"), not a version or a
# section ("2.8.1"), and not the label after a capitalised name ("Section 2", "Table 3", "Llama 2").
_NUMBER = re.compile(r"(?<![\w.\-/])\d[\d,]*(?:\.\d+)?(?![\w\-]|\.\d)")
_NAME_BEFORE = re.compile(r"\b[A-Z][\w-]*\s+$")
_LEAD_INS = frozenset("About After Around By In Of Only Over Some The To Under With".split())
_YEAR = re.compile(r"(19|20)\d\d")
# Markdown a sentence must not carry: a heading, a list marker, a quote marker, emphasis, inline code.
_BLOCK_MARKER = re.compile(r"^\s*(?:[-*+]\s+|\d+[.)]\s+|>\s*)")
_SPACE = re.compile(r"\s")
_NOT_PROSE = re.compile(r"[\\$|<>{}]|\bhttps?://")  # LaTeX, tables, markup, links
# Words a search query does without: the question's frame, not its subject.
_NOT_KEYWORDS = frozenset(
    "how many what which who whom when where why year percent do does did is are was were be been the a an "
    "of in on to for and or by with as at from that this these those it its their there".split()
)
# Passages each search of an agent trace asks for: two searches at the tool's default of 4 overflow a
# 2,048-token training sequence with ~270-token passages, and such a trace is left out.
TRACE_SEARCH_K = 2
# How an agent trace combines its two numbers: the task's words and the calculator's operator.
_OPERATIONS = (("plus", "+"), ("minus", "-"), ("times", "*"), ("divided by", "/"))

Search = Callable[[str, int], list[Hit]]
# A context as the RAG graph focuses it: question, passages -> the passages cut to their best sentences.
Focus = Callable[[str, list[Hit]], list[Hit]]
# Does a prompt (with these tool schemas) leave room for its answer in a training sequence?
Fits = Callable[[list[dict], list[dict] | None], bool]


@dataclass
class Fact:
    question: str
    sentence: str  # the supporting sentence, quoted by the target
    gold: Hit
    number: str | None = None


@dataclass
class Synthesized:
    sft: list[dict] = field(default_factory=list)  # TRL conversations: {"messages", "tools"?}
    dpo: list[dict] = field(default_factory=list)  # TRL pairs: {"prompt", "chosen", "rejected"}
    heldout: list[dict] = field(
        default_factory=list
    )  # {"messages", "answer", "number"} on held-out documents
    counts: dict[str, int] = field(default_factory=dict)


def _prose_units(text: str) -> list[str]:
    """The passage's prose, one string per paragraph or list item, without headings, code blocks or
    Markdown marks, so a target never quotes a heading and a question never holds markup."""
    units: list[str] = []
    in_code = joinable = False
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            in_code, joinable = not in_code, False
            continue
        if in_code or not stripped or stripped.startswith("#"):
            joinable = False
            continue
        item = _BLOCK_MARKER.match(line) is not None
        stripped = _BLOCK_MARKER.sub("", line).replace("**", "").replace("`", "").strip()
        if joinable and not item:  # a hard-wrapped paragraph continues
            units[-1] = f"{units[-1]} {stripped}"
        else:
            units.append(stripped)
        joinable = True
    return units


def _sentences(text: str) -> list[str]:
    """Whole prose sentences of 6-45 words, ending in . ! or ? (a chunk may begin mid-sentence)"""
    return [
        sentence.strip()
        for unit in _prose_units(text)
        for sentence in _SENTENCE_END.split(unit)
        if 6 <= len(sentence.split()) <= 45
        and sentence.rstrip()[-1:] in ".!?"
        and not sentence[0].islower()
        and not _NOT_PROSE.search(sentence)
    ]


def _question_number(sentence: str) -> re.Match | None:
    """The first number of ``sentence`` that states a quantity or a year, not a name's label."""
    for match in _NUMBER.finditer(sentence):
        name = _NAME_BEFORE.search(sentence[: match.start()])
        if name is None or name.group().strip() in _LEAD_INS:
            return match
    return None


def facts_of(hit: Hit, rng: random.Random) -> list[Fact]:
    """A number question per sentence holding a number, and one span question, from one passage."""
    facts = []
    for sentence in _sentences(hit.text):
        match = _question_number(sentence)
        if match is None:
            continue
        words_before = sentence[: match.start()].split()[-8:]
        words_after = sentence[match.end() :].rstrip(".!?").split()[:6]
        if words_after and words_after[0].startswith("%"):
            asked, words_after = "what percent", [words_after[0][1:], *words_after[1:]]
        else:
            asked = "what year" if _YEAR.fullmatch(match.group()) else "how many"
        if len(words_before) >= 2:
            question = " ".join(w for w in [*words_before, asked, *words_after] if w).rstrip(",;:") + "?"
            facts.append(Fact(question, sentence, hit, match.group()))
    plain = [s for s in _sentences(hit.text) if len(s.split()) >= 8]
    if plain:
        sentence = rng.choice(plain)
        words = sentence.rstrip(".!?").split()
        width = min(6, len(words) - 1)
        start = rng.randrange(len(words) - width + 1)
        span = " ".join(words[start : start + width]).strip(",;:()\"'")
        facts.append(Fact(f"What do the documents say about {span}?", sentence, hit))
    return facts


def _excerpt(hit: Hit, chars: int | None, sentence: str | None, rng: random.Random) -> Hit:
    """``hit`` cut at whitespace to about ``chars`` characters (None: whole), around ``sentence`` where the
    passage holds it verbatim (a sentence wrapped across lines keeps its passage whole)."""
    text = hit.text
    if chars is None or len(text) <= chars:
        return hit
    at = text.find(sentence) if sentence else 0
    if at < 0:
        return hit
    length = len(sentence) if sentence else 0
    start = max(0, min(at - rng.randint(0, max(0, chars - length)), len(text) - chars))
    end = max(start + chars, at + length)
    if start > 0:  # begin at a word: the first whitespace after the cut, never past the sentence
        space = _SPACE.search(text, start, at)
        start = space.end() if space else at
    if end < len(text):  # end before a word: the last whitespace within the cut, never inside the sentence
        spaces = [m.start() for m in _SPACE.finditer(text, at + length, end)]
        end = spaces[-1] if spaces else max(end, at + length)
    return replace(hit, text=text[start:end].strip())


def _context(
    fact: Fact, hits: list[Hit], k: int, rng: random.Random, keep_gold: bool, chars: int | None = None
) -> tuple[list[Hit], int]:
    """k passages: the gold one at a random place among distractors (or none of its document), each cut
    to about ``chars`` characters (None: whole)."""
    others = [h for h in hits if h.document_id != fact.gold.document_id][: k - 1 if keep_gold else k]
    others = [_excerpt(h, chars, None, rng) for h in others]
    if not keep_gold:
        return others, 0
    at = rng.randrange(len(others) + 1)
    return [*others[:at], _excerpt(fact.gold, chars, fact.sentence, rng), *others[at:]], at + 1


# Passage lengths (characters) tried before dropping passages: a training prompt keeps as many passages as
# the RAG graph shows, shortened, rather than fewer whole ones (so the last numbers are cited too).
_EXCERPT_CHARS = (None, 1200, 900, 700)


def _fitted_context(
    fact: Fact, hits: list[Hit], k: int, rng: random.Random, keep_gold: bool, fits: Fits
) -> tuple[list[Hit], int]:
    """``_context`` with shorter passages, then fewer distractors, until the prompt fits in a sequence."""
    tries = [(k, chars) for chars in _EXCERPT_CHARS] + [
        (width, _EXCERPT_CHARS[-1]) for width in range(k - 1, 0, -1)
    ]
    for width, chars in tries:
        context, n = _context(fact, hits, width, rng, keep_gold, chars)
        if fits(_rag_messages(fact.question, context), None):
            break
    return context, n


def _focused(fact: Fact, context: list[Hit], n: int, focus: Focus | None) -> tuple[list[Hit], int] | None:
    """The context as the RAG graph shows it, and the gold passage's new number (0: none); None where the
    focus left out the sentence the target quotes."""
    if focus is None:
        return context, n
    focused = focus(fact.question, context)
    if n == 0:
        return focused, 0
    for number, hit in enumerate(focused, 1):
        if hit.chunk_id == fact.gold.chunk_id and fact.sentence in hit.text:
            return focused, number
    return None


def _rag_messages(question: str, context: list[Hit]) -> list[dict]:
    return [
        {"role": "system", "content": RAG_SYSTEM},
        {"role": "user", "content": rag_user_message(question, context)},
    ]


def _rejected(fact: Fact, n: int, k: int, rng: random.Random) -> str:
    """A failing answer: no citation, the wrong passage cited, a wrong number, a quote without the asked
    number, or a repetition loop."""
    unanswering = [s for s in _sentences(fact.gold.text) if fact.number and fact.number not in s]
    choices = (
        ["uncited", "loop"]
        + (["wrong_citation"] if k > 1 else [])
        + (["wrong_number"] if fact.number else [])
        + (["unanswering_quote"] if unanswering else [])
    )
    kind = rng.choice([*choices, "abstained"])
    if kind == "abstained":  # against false abstention: the gold passage is in the context
        return IDK
    if kind == "uncited":
        return fact.sentence
    if kind == "loop":
        return " ".join([fact.sentence] * 4)
    if kind == "unanswering_quote":  # the right passage cited, a fluent quote of it, but not the fact asked
        return f"{rng.choice(unanswering)} [{n}]"
    if kind == "wrong_citation":
        return f"{fact.sentence} [{rng.choice([m for m in range(1, k + 1) if m != n])}]"
    wrong = str(int(float(fact.number.replace(",", ""))) + rng.choice([1, 2, 10, 100]))
    return f"{fact.sentence.replace(fact.number, wrong, 1)} [{n}]"


def keywords(question: str, most: int = 8) -> str:
    """A search query for ``question``: its content words, without the question's frame."""
    words = (w.strip("?,;:.()\"'") for w in question.split())
    return " ".join([w for w in words if w and w.lower() not in _NOT_KEYWORDS][:most])


def _trace(first: Fact, second: Fact, search: Search, collection: str, rng: random.Random) -> list[dict]:
    """search, search, calculator, cited answer: the agent's own format, observations from the real tools."""

    golds = iter([first.gold, second.gold])  # by call order: two facts can share a question's words

    def found(query: str, collections: list[str], k: int) -> list[Hit]:
        hits = search(query, k)
        gold = next(golds)
        if all(h.chunk_id != gold.chunk_id for h in hits):
            hits = [*hits[: k - 1], gold]
        return hits

    toolbox = Toolbox(found, lambda kind, id_, around: [], lambda: [], [collection])
    a, b = first.number.replace(",", ""), second.number.replace(",", "")
    word, operator = rng.choice([op for op in _OPERATIONS if op[1] != "/" or float(b) != 0])
    question = f"{first.question[:-1]}, {word} {second.question[0].lower()}{second.question[1:]}"
    messages = [
        {"role": "system", "content": f"{AGENT_SYSTEM}\nCollections searched by default: {collection}."},
        {"role": "user", "content": question},
    ]
    expression = f"{a} {operator} {b}"
    for index, (name, arguments) in enumerate(
        [
            ("search", {"query": keywords(first.question), "k": TRACE_SEARCH_K}),
            ("search", {"query": keywords(second.question), "k": TRACE_SEARCH_K}),
            ("calculator", {"expression": expression}),
        ]
    ):
        call = {"id": f"call_{index}", "type": "function", "function": {"name": name, "arguments": arguments}}
        messages.append({"role": "assistant", "content": "", "tool_calls": [call]})
        messages.append(
            {"role": "tool", "tool_call_id": f"call_{index}", "content": toolbox.call(name, arguments)}
        )
    total = messages[-1]["content"]
    cite = {p.chunk_id: n for n, p in enumerate(toolbox.passages, 1)}
    answer = (
        f"{first.sentence} [{cite[first.gold.chunk_id]}] {second.sentence} [{cite[second.gold.chunk_id]}] "
        f"So {first.number} {operator} {second.number} = {total}."
    )
    messages.append({"role": "assistant", "content": answer})
    return messages


def synthesize(
    passages: list[Hit],
    search: Search,
    collection: str,
    questions: int = 200,
    k: int = 6,
    heldout_share: float = 0.1,
    abstain_share: float = 0.1,
    trace_share: float = 0.25,
    replay_share: float = 0.0,
    seed: int = 0,
    fits: Fits = lambda messages, tools: True,
    focus: Focus | None = None,
) -> Synthesized:
    """Up to ``questions`` grounded RAG examples (with abstentions, agent traces and DPO pairs) from
    ``passages``; ``search(question, k)`` is the collection's hybrid search. Each DPO pair carries
    ``expect``, what its chosen side meets, for ``own_samples.failed_checks``. ``replay_share`` adds that
    share of plain-text rows (whole passages, trained on every token) against drift from general text.
    ``focus`` cuts each RAG context as the graph does; a question whose quoted sentence it cuts is skipped."""
    rng = random.Random(seed)
    documents = sorted({p.document_id for p in passages})
    rng.shuffle(documents)
    held = set(documents[: round(len(documents) * heldout_share)]) if len(documents) > 1 else set()
    facts = [f for p in passages for f in facts_of(p, rng)]
    rng.shuffle(facts)
    out = Synthesized()
    counts = {"rag": 0, "abstain": 0, "trace": 0, "heldout": 0, "replay": 0, "focus_missed": 0}
    numbered = [f for f in facts if _summable(f) and f.gold.document_id not in held]

    def unheld_search(query: str, k: int) -> list[Hit]:
        return [h for h in search(query, 2 * k) if h.document_id not in held][:k]

    for fact in facts:
        if counts["rag"] >= questions:
            break
        held_out = fact.gold.document_id in held
        if held_out and counts["heldout"] >= max(10, questions // 5):
            continue
        hits = [
            h
            for h in search(fact.question, 3 * k)
            if h.document_id not in held or h.document_id == fact.gold.document_id
        ]
        shown = _focused(fact, *_fitted_context(fact, hits, k, rng, True, fits), focus)
        if shown is None:
            counts["focus_missed"] += 1
            continue
        context, n = shown
        if held_out:
            out.heldout.append(
                {
                    "messages": _rag_messages(fact.question, context),
                    "answer": f"{fact.sentence} [{n}]",
                    "number": fact.number,
                    "citation": n,
                }
            )
            counts["heldout"] += 1
            continue
        prompt = _rag_messages(fact.question, context)
        target = f"{fact.sentence} [{n}]"
        out.sft.append({"messages": [*prompt, {"role": "assistant", "content": target}]})
        expect = {"citation": n, "number": fact.number}
        out.dpo.append(_pair(prompt, target, _rejected(fact, n, len(context), rng), expect))
        counts["rag"] += 1
        if rng.random() < abstain_share:
            context, _ = _focused(fact, *_fitted_context(fact, hits, k, rng, False, fits), focus)
            if context:
                prompt = _rag_messages(fact.question, context)
                out.sft.append({"messages": [*prompt, {"role": "assistant", "content": IDK}]})
                wrong = f"{rng.choice(_sentences(context[0].text) or [context[0].text])} [1]"
                out.dpo.append(_pair(prompt, IDK, wrong, {"abstain": True}))
                counts["abstain"] += 1
        if _summable(fact) and rng.random() < trace_share:
            partners = [f for f in numbered if f.gold.document_id != fact.gold.document_id]
            if partners:
                partner = rng.choice(partners)
                trace = _trace(fact, partner, unheld_search, collection, rng)
                if fits(trace[:-1], SCHEMAS):  # the whole trace trains, not a cut one
                    out.sft.append({"messages": trace, "tools": SCHEMAS})
                    counts["trace"] += 1
    unheld = [p for p in passages if p.document_id not in held]
    replayed = rng.sample(unheld, min(len(unheld), round(len(out.sft) * replay_share)))
    out.sft.extend({"text": p.text} for p in replayed)
    counts["replay"] = len(replayed)
    rng.shuffle(out.sft)
    out.counts = counts
    return out


def _summable(fact: Fact) -> bool:
    """A quantity an agent trace may add up: a year is a date, not an amount."""
    return fact.number is not None and not _YEAR.fullmatch(fact.number)


def _pair(prompt: list[dict], chosen: str, rejected: str, expect: dict) -> dict:
    return {
        "prompt": prompt,
        "chosen": [{"role": "assistant", "content": chosen}],
        "rejected": [{"role": "assistant", "content": rejected}],
        "expect": expect,
    }
