"""Answering questions over a collection: the RAG or agent graph, wired to the platform's data, with the
question and the answer stored in a conversation.

The graphs (ember.agents) never touch storage: the Answerer hands them a search, a chunk reader and the
collection list as callables, rewrites follow-ups to stand alone, and persists each turn. It is given
those callables too (see EmberService.ask_stream), so it knows nothing of the service.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from ember.agents.agent import AgentConfig, AgentGraph
from ember.agents.backends import ChatBackend
from ember.agents.chat_model import EmberChatModel
from ember.agents.focus import SentenceScorer
from ember.agents.rag import RagConfig, RagGraph
from ember.agents.rewrite import Grounding, standalone_query
from ember.agents.tools import ReadFn, SearchFn, Toolbox, ToolError
from ember.agents.types import AnswerEvent, GroundedAnswer
from ember.llm.inference.sampling import SamplingParams
from ember.platform.conversations import ConversationStore
from ember.platform.errors import EmberError, InvalidInputError
from ember.platform.types import Answer, CollectionSummary, MessageRecord
from ember.retrieval.types import Hit

HISTORY_TURNS = 1  # earlier question/answer pairs shown to the model (small models drift with more)
DEFAULT_MAX_TOKENS = 200
# Answers block any repeated 6-token n-gram of their own output (the prompt's passages stay free to quote):
# on the development set it cut the answers that loop to max_tokens (docs/benchmarks.md, #14 item 5).
# A request's own sampling options win; a remote backend ignores the field.
ANSWER_SAMPLING = {"no_repeat_ngram_size": 6}
GROUNDING_K = 10  # hits looked at for a text's best dense similarity

T = TypeVar("T")


def check_question(question: str, sampling: dict[str, Any]) -> None:
    """Reject an empty question or bad sampling options before any work starts."""
    if not question.strip():
        raise InvalidInputError("question must not be empty")
    options = {k: v for k, v in sampling.items() if k != "constrained_tool_calls"}
    try:
        SamplingParams(**{"max_tokens": DEFAULT_MAX_TOKENS, **options})
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(f"sampling options: {exc}") from exc


def as_tool(call: Callable[..., T], tool: str) -> Callable[..., T]:
    """``call`` with the platform's errors turned into ToolErrors, which the agent shows the model."""

    def tool_call(*args: Any) -> T:
        try:
            return call(*args)
        except EmberError as exc:
            raise ToolError(f"{tool}: {exc}") from exc

    return tool_call


def best_dense_score(hits: Sequence[Hit]) -> float:
    """The best dense (cosine) similarity among ``hits``: how close the closest passage is (0 if none)."""
    return max((h.stages["dense"].score for h in hits if "dense" in h.stages), default=0.0)


def _history(records: list[MessageRecord]) -> list[BaseMessage]:
    return [HumanMessage(r.content) if r.role == "user" else AIMessage(r.content) for r in records]


class Answerer:
    def __init__(
        self,
        search: SearchFn,  # over collections known to exist: it does not check them again
        read: ReadFn,
        list_collections: Callable[[], list[CollectionSummary]],
        collection_id: Callable[[str], int],  # NotFoundError for a collection that does not exist
        llm: ChatBackend,
        conversations: ConversationStore,
        rewrite_with_llm: bool = False,  # the LLM rewrites follow-ups well (a remote or an aligned model)
        passages: int = RagConfig.k,  # what a grounded answer reads
        constrained_tool_calls: bool = False,  # the agent's default; a request may say otherwise
        focus_sentences: int = 0,  # sentences a grounded answer's prompt keeps (0: whole passages)
        score_sentences: SentenceScorer | None = None,  # ranks sentences for focus, beside word overlap
    ) -> None:
        self.search, self.read, self.list_collections = search, read, list_collections
        self.collection_id, self.llm, self.conversations = collection_id, llm, conversations
        self.rewrite_with_llm, self.passages = rewrite_with_llm, passages
        self.constrained_tool_calls = constrained_tool_calls
        self.focus_sentences, self.score_sentences = focus_sentences, score_sentences

    def _collections(self) -> list[dict]:
        return [
            {"name": c.name, "description": c.description, "documents": c.documents}
            for c in self.list_collections()
        ]

    def _search_tool(self, checked: str) -> SearchFn:
        """Search for the graphs: a collection the agent names itself is checked first; ``checked`` was."""

        def search(query: str, names: Sequence[str], k: int) -> list[Hit]:
            for name in set(names) - {checked}:
                self.collection_id(name)
            return self.search(query, names, k)

        return as_tool(search, "search")

    def _grounding(self, collection: str) -> Grounding:
        return lambda text: best_dense_score(self.search(text, [collection], GROUNDING_K))

    def stream(
        self,
        question: str,
        collection: str,
        collection_id: int,
        agent: bool = False,
        conversation_id: int | None = None,
        show_steps: bool = False,
        **sampling: Any,
    ) -> Iterator[AnswerEvent]:
        """Answer ``question`` (checked by check_question) from ``collection`` (known to exist)."""
        sampling = {**ANSWER_SAMPLING, **sampling}
        max_tokens = int(sampling.pop("max_tokens", DEFAULT_MAX_TOKENS))
        # An agent option, not sampling.
        constrained = bool(sampling.pop("constrained_tool_calls", self.constrained_tool_calls))
        if conversation_id is None:
            conversation_id = self.conversations.start(collection_id, question, "agent" if agent else "rag")
            previous, history = None, []
        else:
            previous = self.conversations.last_query(conversation_id)
            history = _history(self.conversations.recent(conversation_id, HISTORY_TURNS))
        rewriter = self.llm if self.rewrite_with_llm else None
        query = standalone_query(question, previous, self._grounding(collection), rewriter)
        self.conversations.add(conversation_id, "user", question, rewritten_query=query)

        llm = EmberChatModel(backend=self.llm, sampling=sampling)
        search = self._search_tool(collection)
        config = RagConfig(k=self.passages, max_tokens=max_tokens, focus_sentences=self.focus_sentences)
        rag = RagGraph(llm, lambda q, k: search(q, [collection], k), config, self.score_sentences)
        if agent:
            toolbox = Toolbox(search, as_tool(self.read, "read"), self._collections, [collection])
            events = AgentGraph(
                llm, toolbox, rag, AgentConfig(max_tokens=max_tokens, constrained_tool_calls=constrained)
            ).stream(question, history, query)
        else:
            events = rag.stream(question, query, history)
        for event in events:
            if event.kind == "done":
                yield AnswerEvent("done", answer=self._store(conversation_id, query, event.answer))
            elif event.kind != "step" or show_steps:
                yield event

    def _store(self, conversation_id: int, query: str, result: GroundedAnswer) -> Answer:
        meta = {
            "flags": result.flags,
            "usage": result.usage,
            "timings_ms": result.timings_ms,
            "path": result.path,
            "fallback_reason": result.fallback_reason,
            "prompt_chunk_ids": result.prompt_chunk_ids,
            "prompt_document_ids": result.prompt_document_ids,
        }
        message_id = self.conversations.add(
            conversation_id,
            "assistant",
            result.text,
            citations=result.citations,
            steps=result.steps,
            meta=meta,
        )
        return Answer(
            result.text,
            result.citations,
            result.steps,
            result.flags,
            result.usage,
            result.timings_ms,
            conversation_id,
            message_id,
            result.path,
            query,
            result.fallback_reason,
            result.prompt_chunk_ids,
            result.prompt_document_ids,
        )
