"""The agent's fallback when the model calls no tool: a plan a small model cannot get wrong.

    1. split the task into sub-questions (clauses, by simple rules) and search once for each;
    2. extract the fact each sub-question asks for from its passages (one short model turn each);
    3. when the task asks for a quantity and the facts hold two numbers or more, have the model write one
       calculator call (its format forced by constrained decoding where the backend has it) and run it;
    4. answer from every passage found, with the facts and the calculation stated, citations verified.

One retrieve → answer pass held every needed topic in 7 of 25 tasks; a search per clause finds the
passages each fact lives in. Every search, extraction and calculation is a recorded Step.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable

from langchain_core.messages import HumanMessage, SystemMessage

from ember.agents.chat_model import EmberChatModel
from ember.agents.focus import SentenceScorer, focus_passages
from ember.agents.prompts import render_passage, render_passages
from ember.agents.rag import RagConfig, RagGraph, Search
from ember.agents.tools import SCHEMAS, Toolbox, ToolError
from ember.agents.types import AnswerEvent, GroundedAnswer, Step, add_usage
from ember.llm.inference.tool_calls import ToolCallFormat
from ember.retrieval.types import Hit

MAX_SUB_QUESTIONS = 4
SUB_QUESTION_K = 4  # passages per sub-question
EXTRACT_TOKENS = 48
OBSERVATION_CHARS = 2000
# Clause boundaries: punctuation, and words that join two facts ("than X", "if X", "given X", "using X").
_CLAUSE_BREAK = re.compile(r"[,;:?]\s+|\.\s+|\s+(?=(?:than|if|given|using|and then|compared to)\b)", re.I)
_WORD = re.compile(r"[A-Za-z0-9][\w'-]*")
_QUANTITY = re.compile(r"\b(how (many|much|long|large)|by what factor|times|ratio|percent|fraction)\b", re.I)
_NUMBER = re.compile(r"\d[\d,.]*")
EXTRACT_SYSTEM = (
    "Read the passages and state the one fact that answers the question, as a short sentence that keeps "
    "the numbers and units exactly as the passage writes them. If no passage has it, reply: not found."
)
CALCULATE_PROMPT = (
    "Facts:\n{facts}\n\nTask: {task}\nWrite one calculator call whose expression computes the answer "
    "from the facts."
)
CALCULATOR = next(s for s in SCHEMAS if s["function"]["name"] == "calculator")


def sub_questions(task: str, limit: int = MAX_SUB_QUESTIONS) -> list[str]:
    """The task's clauses that say something (three words or more; the ``limit`` longest, in task order),
    then the whole task, which finds what the clauses share."""
    clauses = [c.strip(" ,.;:?") for c in _CLAUSE_BREAK.split(task)]
    kept = list(dict.fromkeys(c for c in clauses if len(_WORD.findall(c)) >= 3))
    longest = set(sorted(kept, key=len, reverse=True)[:limit])
    kept = [c for c in kept if c in longest]
    whole = task.strip()
    return kept if whole.strip(" ,.;:?") in kept else [*kept, whole]


class PlannedFallback:
    def __init__(
        self,
        llm: EmberChatModel,
        search: Search,
        config: RagConfig,
        record: Callable[[Step], None],  # each step, as it happens
        thought: str,
        score_sentences: SentenceScorer | None = None,  # for focused passages (config.focus_sentences)
    ) -> None:
        self.llm, self.search, self.config, self.record, self.thought = llm, search, config, record, thought
        self.score_sentences = score_sentences
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0}

    def run(
        self, task: str, query: str, history: list, writer: Callable[[AnswerEvent], None]
    ) -> GroundedAnswer:
        passages: list[Hit] = []
        facts: list[str] = []
        for question in sub_questions(query):
            hits = self._search(question)
            passages += [h for h in hits if h.chunk_id not in {p.chunk_id for p in passages}]
            fact = self._extract(question, hits) if hits else ""
            if fact:
                facts.append(fact)
        calculation = self._calculate(task, facts)
        notes = "".join(f"\n- {fact}" for fact in facts)
        if calculation:
            notes += f"\n- calculation: {calculation}"
        question = f"{task}\nFacts found:{notes}" if notes else task
        config = RagConfig(**{**vars(self.config), "k": len(passages)})
        rag = RagGraph(self.llm, lambda q, k: passages, config, self.score_sentences)
        result = GroundedAnswer("")
        for event in rag.stream(question, query, history):
            if event.kind == "token":
                writer(event)
            elif event.kind == "done":
                result = event.answer
        for name in self.usage:
            result.usage[name] += self.usage[name]
        result.record_prompt_passages(passages)  # the extraction prompts showed the model every hit
        return result

    def _search(self, question: str) -> list[Hit]:
        start = time.perf_counter()
        hits = self.search(question, SUB_QUESTION_K)
        rendered = "\n".join(render_passage(n, h) for n, h in enumerate(hits, 1))
        self._step("search", {"query": question, "k": SUB_QUESTION_K}, rendered or "no passages found", start)
        return hits

    def _extract(self, question: str, hits: list[Hit]) -> str:
        start = time.perf_counter()
        if self.config.focus_sentences:  # the sentences closest to the sub-question, as answers read them
            hits = focus_passages(question, hits, self.config.focus_sentences, self.score_sentences)
        messages = [
            SystemMessage(EXTRACT_SYSTEM),
            HumanMessage(f"{render_passages(hits)}\n\nQuestion: {question}\nFact:"),
        ]
        message = self.llm.invoke(messages, max_tokens=EXTRACT_TOKENS)
        add_usage(self.usage, message.usage_metadata)
        fact = message.text.strip().split("\n")[0].strip()
        found = bool(fact) and "not found" not in fact.lower()
        self._step("extract", {"question": question}, fact or "(nothing)", start)
        return fact if found else ""

    def _calculate(self, task: str, facts: list[str]) -> str:
        """``expression = value`` when the task asks for a quantity that several facts' numbers combine
        into and the model writes a calculator call that runs; "" otherwise."""
        if not _QUANTITY.search(task) or sum(bool(_NUMBER.search(f)) for f in facts) < 2:
            return ""
        start = time.perf_counter()
        backend = self.llm.backend
        prompt = CALCULATE_PROMPT.format(facts="\n".join(f"- {f}" for f in facts), task=task)
        sampling: dict = {"max_tokens": 64, "tools": [CALCULATOR]}
        constraint = backend.tool_call_constraint([CALCULATOR], force_open=True)
        if constraint is not None:
            sampling["logits_processor"] = constraint
        else:
            prompt += f"\nReply only with: {_example(backend.tool_call_format)}"
        message = self.llm.invoke([HumanMessage(prompt)], **sampling)
        add_usage(self.usage, message.usage_metadata)
        calls = [c for c in message.tool_calls if c["name"] == "calculator"]
        if not calls:
            return ""
        expression = str(calls[0]["args"].get("expression", ""))
        toolbox = Toolbox(lambda *a: [], lambda *a: [], lambda: [], [])
        try:
            value = toolbox.call("calculator", {"expression": expression})
        except ToolError as exc:
            self._step("calculator", {"expression": expression}, f"error: {exc}", start)
            return ""
        self._step("calculator", {"expression": expression}, value, start)
        return f"{expression} = {value}"

    def _step(self, tool: str, arguments: dict, observation: str, start: float) -> None:
        latency = (time.perf_counter() - start) * 1e3
        self.record(Step(self.thought, tool, arguments, observation[:OBSERVATION_CHARS], latency))


def _example(fmt: ToolCallFormat) -> str:
    return fmt.render_calls([{"name": "calculator", "arguments": {"expression": "2 * 3"}}])
