"""Answering questions over a collection: the RAG or agent graph, wired to the platform's data, with the
question and the answer stored in a conversation.

The graphs (ember.agents) never touch storage: this module hands them the retriever, a chunk reader and
the collection list as callables, rewrites follow-ups to stand alone, and persists each turn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AIMessage, BaseMessage, HumanMessage
from sqlalchemy import select

from ember.agents.agent import AgentConfig, AgentGraph
from ember.agents.chat_model import EmberChatModel
from ember.agents.rag import RagConfig, RagGraph
from ember.agents.rewrite import standalone_query
from ember.agents.tools import Toolbox, ToolError
from ember.agents.types import AnswerEvent, GroundedAnswer
from ember.llm.inference.sampling import SamplingParams
from ember.platform.conversations import ConversationStore
from ember.platform.db import Database
from ember.platform.errors import EmberError, InvalidInputError
from ember.platform.tables import Chunk, Collection, Document
from ember.retrieval.types import ChunkRecord, Hit, location_of

if TYPE_CHECKING:
    from ember.platform.service import EmberService

HISTORY_TURNS = 1  # earlier question/answer pairs shown to the model (small models drift with more)
DEFAULT_MAX_TOKENS = 200


@dataclass
class Answer:
    text: str
    citations: list[dict[str, Any]]  # n, chunk_id, document_id, title, location, quote
    steps: list[dict[str, Any]]  # thought, tool, arguments, observation, latency_ms
    flags: list[str]
    usage: dict[str, int]
    timings_ms: dict[str, float]
    conversation_id: int
    message_id: int
    path: str  # "rag", "agent" or "agent_fallback"
    query: str  # what was searched: the question, or its stand-alone rewrite


def read_chunks(db: Database, kind: str, target: int, around: int) -> list[Hit]:
    """A chunk with ``around`` neighbours each side, or the first ``2 * around + 1`` chunks of a document."""
    with db.session() as session:
        if kind == "chunk":
            chunk = session.get(Chunk, target)
            if chunk is None:
                raise ToolError(f"read: chunk {target} does not exist")
            document_id, low, high = chunk.document_id, chunk.ordinal - around, chunk.ordinal + around
        else:
            if session.get(Document, target) is None:
                raise ToolError(f"read: document {target} does not exist")
            document_id, low, high = target, 0, 2 * around
        rows = session.execute(
            select(Chunk, Document.title, Collection.name)
            .join(Document, Chunk.document_id == Document.id)
            .join(Collection, Document.collection_id == Collection.id)
            .where(Chunk.document_id == document_id, Chunk.ordinal.between(low, high))
            .order_by(Chunk.ordinal)
        ).all()
        hits = []
        for chunk, title, collection in rows:
            record = ChunkRecord(
                chunk.id, chunk.document_id, chunk.text, title, " > ".join(chunk.heading_path), chunk.page
            )
            hits.append(
                Hit(chunk.id, chunk.document_id, title, location_of(record), chunk.text, 0.0, collection)
            )
        return hits


def _history(records) -> list[BaseMessage]:  # noqa: ANN001 - MessageRecords
    return [HumanMessage(r.content) if r.role == "user" else AIMessage(r.content) for r in records]


class Answerer:
    def __init__(self, service: EmberService) -> None:
        self.service = service
        self.conversations = ConversationStore(service.db)

    def _search(self, query: str, collections: list[str], k: int) -> list[Hit]:
        try:
            return self.service.search(query, collections, k).hits
        except EmberError as exc:  # a bad collection name from the model is the model's error to see
            raise ToolError(f"search: {exc}") from exc

    def _collections(self) -> list[dict]:
        return [
            {"name": c.name, "description": c.description, "documents": c.documents}
            for c in self.service.list_collections()
        ]

    def stream(
        self,
        question: str,
        collection: str,
        agent: bool = False,
        conversation_id: int | None = None,
        show_steps: bool = False,
        **sampling: Any,
    ) -> Iterator[AnswerEvent]:
        if not question.strip():
            raise InvalidInputError("question must not be empty")
        max_tokens = int(sampling.pop("max_tokens", DEFAULT_MAX_TOKENS))
        try:
            SamplingParams(max_tokens=max_tokens, **sampling)
        except (TypeError, ValueError) as exc:
            raise InvalidInputError(f"sampling options: {exc}") from exc
        self.service.get_collection(collection)
        if conversation_id is None:
            conversation_id = self.conversations.start(collection, question, "agent" if agent else "rag")
            previous, history = None, []
        else:
            previous = self.conversations.last_query(conversation_id)
            history = _history(self.conversations.recent(conversation_id, HISTORY_TURNS))
        query = standalone_query(question, previous)
        self.conversations.add(conversation_id, "user", question, rewritten_query=query)

        llm = EmberChatModel(backend=self.service.llm, sampling=sampling)
        rag = RagGraph(llm, lambda q, k: self._search(q, [collection], k), RagConfig(max_tokens=max_tokens))
        if agent:
            toolbox = Toolbox(
                self._search,
                lambda kind, target, around: read_chunks(self.service.db, kind, target, around),
                self._collections,
                [collection],
            )
            events = AgentGraph(llm, toolbox, rag, AgentConfig(max_tokens=max_tokens)).stream(
                question, history
            )
        else:
            events = rag.stream(question, query, history)
        for event in events:
            if event.kind == "done":
                yield AnswerEvent("done", answer=self._store(conversation_id, query, event.answer))
            elif event.kind != "step" or show_steps:
                yield event

    def _store(self, conversation_id: int, query: str, result: GroundedAnswer) -> Answer:
        citations = [asdict(c) for c in result.citations]
        steps = [asdict(s) for s in result.steps]
        meta = {
            "flags": result.flags,
            "usage": result.usage,
            "timings_ms": result.timings_ms,
            "path": result.path,
        }
        message_id = self.conversations.add(
            conversation_id, "assistant", result.text, citations=citations, steps=steps, meta=meta
        )
        return Answer(
            result.text,
            citations,
            steps,
            result.flags,
            result.usage,
            result.timings_ms,
            conversation_id,
            message_id,
            result.path,
            query,
        )
