"""The RAG answer graph: retrieve → grade (relevance threshold) → generate with [n] citations → verify.

    graph = RagGraph(llm, search=lambda query, k: hits)
    answer = graph.run("What is X?")             # a GroundedAnswer
    for event in graph.stream("What is X?"): ...  # AnswerEvents: token..., citations, done

``search`` is any callable returning ranked ``Hit``s: the platform passes its retriever over the chosen
collection (this layer never touches storage).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypedDict

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langgraph.config import get_stream_writer
from langgraph.graph import END, START, StateGraph

from ember.agents.chat_model import EmberChatModel
from ember.agents.citations import verify
from ember.agents.focus import SentenceScorer, focus_passages
from ember.agents.packing import edges_first, select_within_budget
from ember.agents.prompts import RAG_SYSTEM, rag_user_message
from ember.agents.relevance import RelevanceThreshold
from ember.agents.repetition import loop_start
from ember.agents.types import DEFAULT_PASSAGES, I_DONT_KNOW, AnswerEvent, GroundedAnswer, add_usage
from ember.retrieval.types import Hit

Search = Callable[[str, int], list[Hit]]
LOOP_CHECK_CHARS = 32  # new text between two checks for a loop (a check reads the last 1000 characters)


@dataclass
class RagConfig:
    k: int = DEFAULT_PASSAGES  # passages retrieved
    # Passages get what the context window leaves after the rest of the prompt and the answer, up to this
    # cap (None: no cap): prefill grows with the prompt, ~2.4 s per 1,000 tokens on 2 CPU cores in fp32,
    # and 3,072 tokens hold about 8 typical passages (for a larger model reading more).
    context_tokens: int | None = 3072
    max_tokens: int = 200  # answer length
    threshold: RelevanceThreshold = field(default_factory=RelevanceThreshold)
    repair_citations: bool = True
    # Sentences the prompt keeps from its passages, the best against the question (0: whole passages).
    focus_sentences: int = 0


class RagState(TypedDict, total=False):
    question: str
    query: str  # what is searched: the question, or its stand-alone rewrite
    history: list[BaseMessage]
    hits: list[Hit]
    passages: list[Hit]  # in prompt order; citation [n] is passages[n - 1]
    draft: str
    looped: bool  # the model fell into a loop: generation stopped and the loop was cut
    answer: GroundedAnswer


class RagGraph:
    def __init__(
        self,
        llm: EmberChatModel,
        search: Search,
        config: RagConfig | None = None,
        score_sentences: SentenceScorer | None = None,
    ) -> None:
        """``score_sentences`` adds its scores to word overlap when passages are focused."""
        self.llm, self.search, self.config = llm, search, config or RagConfig()
        self.score_sentences = score_sentences
        graph = StateGraph(RagState)
        graph.add_node("retrieve", self._retrieve)
        graph.add_node("grade", self._grade)
        graph.add_node("generate", self._generate)
        graph.add_node("verify", self._verify)
        graph.add_edge(START, "retrieve")
        graph.add_edge("retrieve", "grade")
        graph.add_conditional_edges("grade", lambda s: "generate" if s["hits"] else END)
        graph.add_edge("generate", "verify")
        graph.add_edge("verify", END)
        self.graph = graph.compile()

    # --- public ------------------------------------------------------------------------------------
    def run(
        self, question: str, query: str | None = None, history: list[BaseMessage] | None = None
    ) -> GroundedAnswer:
        for event in self.stream(question, query, history):
            if event.kind == "done":
                return event.answer
        raise RuntimeError("the RAG graph ended without an answer")

    def stream(
        self, question: str, query: str | None = None, history: list[BaseMessage] | None = None
    ) -> Iterator[AnswerEvent]:
        if not question.strip():
            raise ValueError("question must not be empty")
        state: RagState = {"question": question, "query": query or question, "history": history or []}
        final: RagState = {}
        for mode, payload in self.graph.stream(state, stream_mode=["custom", "values"]):
            if mode == "custom":
                yield payload
            else:
                final = payload
        answer = final["answer"]
        yield AnswerEvent("citations", citations=answer.citations)
        yield AnswerEvent("done", answer=answer)

    # --- nodes -------------------------------------------------------------------------------------
    def _retrieve(self, state: RagState) -> RagState:
        start = time.perf_counter()
        hits = self.search(state["query"], self.config.k)
        answer = GroundedAnswer("", timings_ms={"retrieve": (time.perf_counter() - start) * 1e3})
        return {"hits": hits, "answer": answer}

    def _grade(self, state: RagState) -> RagState:
        relevant = self.config.threshold.grade(state["hits"])
        if relevant:
            return {"hits": relevant}
        answer = state["answer"]
        answer.text, answer.flags = I_DONT_KNOW, ["no_relevant_passages"]
        get_stream_writer()(AnswerEvent("token", text=I_DONT_KNOW))
        return {"hits": [], "answer": answer}

    def _messages(self, state: RagState, passages: list[Hit]) -> list[BaseMessage]:
        return [
            SystemMessage(RAG_SYSTEM),
            *state["history"],
            HumanMessage(rag_user_message(state["question"], passages)),
        ]

    def passage_budget(self, state: RagState) -> int:
        """Tokens for passages: what the context window leaves after the rest of the prompt and the
        answer's max_tokens, capped by ``context_tokens``."""
        count = self.llm.backend.count_tokens
        fixed = sum(count(m.text) + 8 for m in self._messages(state, []))
        room = self.llm.backend.context_window - fixed - self.config.max_tokens
        return room if self.config.context_tokens is None else min(self.config.context_tokens, room)

    def _generate(self, state: RagState) -> RagState:
        writer = get_stream_writer()
        answer = state["answer"]
        start = time.perf_counter()
        count = self.llm.backend.count_tokens
        passages = select_within_budget(state["hits"], self.passage_budget(state), count)
        focus = self.config.focus_sentences
        if focus:
            passages = focus_passages(state["query"], passages, focus, self.score_sentences)
        else:
            passages = edges_first(passages)
        answer.record_prompt_passages(passages)
        message: AIMessage | None = None
        messages, draft, checked, loop = self._messages(state, passages), "", 0, None
        for chunk in self.llm.stream(messages, max_tokens=self.config.max_tokens):
            if chunk.content:
                if "first_token" not in answer.timings_ms:
                    answer.timings_ms["first_token"] = (time.perf_counter() - start) * 1e3
                writer(AnswerEvent("token", text=chunk.text))
                draft += chunk.text
            message = chunk if message is None else message + chunk
            if len(draft) - checked >= LOOP_CHECK_CHARS:
                checked, loop = len(draft), loop_start(draft)
                if loop is not None:
                    break  # closing the stream stops the model
        answer.timings_ms["generate"] = (time.perf_counter() - start) * 1e3
        if loop is not None:  # the usage report comes with the last chunk: count what was generated
            answer.usage["prompt_tokens"] += sum(count(m.text) for m in messages)
            answer.usage["completion_tokens"] += count(draft)
            draft = draft[:loop].rstrip()
        else:
            add_usage(answer.usage, message.usage_metadata if message else None)
            draft = message.text if message else ""
        return {"passages": passages, "draft": draft, "answer": answer, "looped": loop is not None}

    def _verify(self, state: RagState) -> RagState:
        answer = state["answer"]
        checked = verify(state["draft"], state["passages"], repair=self.config.repair_citations)
        answer.text, answer.citations, answer.flags = checked.text, checked.citations, checked.flags
        if state["looped"]:
            answer.flags.append("repetition_stopped")
        return {"answer": answer}
