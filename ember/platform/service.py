"""The facade that the CLI, the HTTP API, the TUI and the evals call. Nothing else touches storage."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import func, select

from ember.platform import api_keys
from ember.platform.api_keys import KeyInfo
from ember.platform.db import Database
from ember.platform.errors import ConflictError, InvalidInputError, NotFoundError
from ember.platform.ingest.pipeline import FileResult, IngestHook, IngestOptions, IngestReport, IngestRun
from ember.platform.ingest.sources import SourceError, resolve_sources
from ember.platform.ingest.tokens import TokenCounter, token_counter_for
from ember.platform.ingest_jobs import IngestJobStatus, get_ingest_job
from ember.platform.settings import Settings, get_settings
from ember.platform.tables import Chunk, Collection, Document

if TYPE_CHECKING:  # heavy imports (torch, FAISS) stay out of `ember --help`
    from collections.abc import Iterator

    from ember.agents.backends import ChatBackend
    from ember.agents.types import AnswerEvent
    from ember.llm.inference.chat import ChatModel
    from ember.platform.answers import Answer
    from ember.platform.conversations import ConversationRecord
    from ember.retrieval.embedder import Embedder
    from ember.retrieval.retriever import Retriever, SearchResult
    from ember.retrieval.store import IndexStore
    from ember.retrieval.types import Hit


@dataclass(frozen=True)
class CollectionSummary:
    id: int
    name: str
    description: str
    documents: int
    chunks: int
    tokens: int
    chunk_size: int
    chunk_overlap: int
    created_at: datetime


@dataclass(frozen=True)
class DocumentSummary:
    id: int
    title: str
    source_uri: str
    mime_type: str
    size_bytes: int
    chunks: int
    status: str
    updated_at: datetime


class EmberService:
    def __init__(
        self,
        settings: Settings | None = None,
        token_counter: TokenCounter | None = None,
        ingest_hook: IngestHook | None = None,
    ) -> None:
        self.settings = settings or get_settings()
        self.token_counter = token_counter or token_counter_for(
            self.settings.chunk_tokenizer, self.settings.models_dir
        )
        self._ingest_hook = ingest_hook

    @property
    def ingest_hook(self) -> IngestHook | None:
        """The given hook; by default the one that keeps the search indexes in sync with SQL."""
        if self._ingest_hook is None and self.settings.sync_indexes:
            from ember.platform.index_sync import IndexSync

            self._ingest_hook = IndexSync(self.db, self.index_store)
        return self._ingest_hook

    @ingest_hook.setter
    def ingest_hook(self, hook: IngestHook | None) -> None:
        self._ingest_hook = hook

    @cached_property
    def db(self) -> Database:
        return Database(self.settings.effective_database_url, self.settings.sqlite_busy_timeout_ms)

    # --- ingestion -------------------------------------------------------------------------------
    def ingest(
        self,
        path: str,
        collection: str,
        options: IngestOptions | None = None,
        pattern: str | None = None,
        on_file: Callable[[FileResult], None] | None = None,
        on_start: Callable[[int], None] | None = None,
    ) -> IngestReport:
        if not collection.strip():
            raise InvalidInputError("collection name must not be empty")
        try:
            sources = resolve_sources(path, pattern)
        except SourceError as exc:
            raise InvalidInputError(str(exc)) from exc
        if on_start:
            on_start(len(sources.files))
        run = IngestRun(
            self.db,
            self.token_counter,
            self.settings.max_file_bytes,
            self.settings.chunk_size,
            self.settings.chunk_overlap,
            self.ingest_hook,
            self.settings.ingest_workers,
        )
        try:
            return run.run(collection.strip(), sources, options or IngestOptions(), on_file)
        except ValueError as exc:  # chunking parameters rejected before anything was stored
            raise InvalidInputError(str(exc)) from exc

    # --- collections -----------------------------------------------------------------------------
    def _collection(self, session, name: str) -> Collection:  # noqa: ANN001
        collection = session.scalar(select(Collection).where(Collection.name == name))
        if collection is None:
            raise NotFoundError(f"collection '{name}' does not exist")
        return collection

    def list_collections(self) -> list[CollectionSummary]:
        with self.db.session() as session:
            names = session.scalars(select(Collection.name).order_by(Collection.name)).all()
        return [self.get_collection(name) for name in names]

    def get_collection(self, name: str) -> CollectionSummary:
        with self.db.session() as session:
            collection = self._collection(session, name)
            documents = session.scalar(select(func.count()).where(Document.collection_id == collection.id))
            chunks, tokens = session.execute(
                select(func.count(Chunk.id), func.coalesce(func.sum(Chunk.token_count), 0))
                .join(Document, Chunk.document_id == Document.id)
                .where(Document.collection_id == collection.id)
            ).one()
            return CollectionSummary(
                id=collection.id,
                name=collection.name,
                description=collection.description,
                documents=documents,
                chunks=chunks,
                tokens=int(tokens),
                chunk_size=collection.chunk_size or self.settings.chunk_size,
                chunk_overlap=collection.chunk_overlap
                if collection.chunk_overlap is not None
                else self.settings.chunk_overlap,
                created_at=collection.created_at,
            )

    def delete_collection(self, name: str) -> None:
        with self.db.session() as session:
            session.delete(self._collection(session, name))
        self.index_store.drop(name)

    def rename_collection(self, old: str, new: str) -> None:
        new = new.strip()
        if not new:
            raise InvalidInputError("the new collection name must not be empty")
        with self.db.session() as session:
            if session.scalar(select(Collection.id).where(Collection.name == new)) is not None:
                raise ConflictError(f"collection '{new}' already exists")
            self._collection(session, old).name = new
            self.index_store.rename(old, new)  # inside the transaction: a failed move rolls the rename back

    # --- documents -------------------------------------------------------------------------------
    def list_documents(self, collection: str) -> list[DocumentSummary]:
        with self.db.session() as session:
            owner = self._collection(session, collection)
            rows = session.execute(
                select(Document, func.count(Chunk.id))
                .outerjoin(Chunk, Chunk.document_id == Document.id)
                .where(Document.collection_id == owner.id)
                .group_by(Document.id)
                .order_by(Document.source_uri)
            ).all()
            return [
                DocumentSummary(
                    id=d.id,
                    title=d.title,
                    source_uri=d.source_uri,
                    mime_type=d.mime_type,
                    size_bytes=d.size_bytes,
                    chunks=n,
                    status=d.status,
                    updated_at=d.updated_at,
                )
                for d, n in rows
            ]

    # --- retrieval -------------------------------------------------------------------------------
    @cached_property
    def index_store(self) -> IndexStore:
        from ember.retrieval.store import IndexStore

        return IndexStore(self.settings.indexes_dir, self.settings.embedding_model)

    @cached_property
    def retriever(self) -> Retriever:
        from ember.retrieval.rerank import Reranker
        from ember.retrieval.retriever import Retriever

        reranker_path = self.settings.reranker_path
        return Retriever(self.index_store, Reranker(reranker_path) if reranker_path else None)

    def search(
        self,
        query: str,
        collections: Sequence[str],
        k: int = 8,
        mode: str = "hybrid+rerank",
        filters: Mapping[str, object] | None = None,
    ) -> SearchResult:
        """Hybrid search over one or more collections; each must exist."""
        if not query.strip():
            raise InvalidInputError("query must not be empty")
        if k < 1:
            raise InvalidInputError(f"k must be at least 1, got {k}")
        for name in collections:
            self.get_collection(name)
        try:
            return self.retriever.run(query, list(collections), k, filters, mode)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc

    @cached_property
    def embedder(self) -> Embedder:
        from ember.retrieval.embedder import Embedder

        return Embedder(self.settings.embedding_model)

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Normalized embeddings with the collection indexes' model."""
        if not texts:
            raise InvalidInputError("nothing to embed: the input is empty")
        return self.embedder.encode(list(texts)).tolist()

    # --- the local LLM ---------------------------------------------------------------------------
    def model_path(self, name_or_path: str | None = None) -> Path:
        """A model checkpoint directory: a path, or a name under $EMBER_HOME/models."""
        name = name_or_path or self.settings.llm_model
        candidate = Path(name).expanduser()
        if candidate.is_dir():
            return candidate
        under_home = self.settings.models_dir / name
        if under_home.is_dir():
            return under_home
        raise NotFoundError(f"model '{name}' is not installed; run `ember models pull {name}`")

    @cached_property
    def chat_model(self) -> ChatModel:
        from ember.llm.inference.chat import ChatModel

        return ChatModel.load(self.model_path(), compile_decode=self.settings.llm_compile or None)

    # --- collections, keys, jobs and models for the API and the TUI (issue 7) --------------------
    def create_collection(self, name: str, description: str = "") -> CollectionSummary:
        name = name.strip()
        if not name:
            raise InvalidInputError("collection name must not be empty")
        with self.db.session() as session:
            if session.scalar(select(Collection.id).where(Collection.name == name)) is not None:
                raise ConflictError(f"collection '{name}' already exists")
            session.add(Collection(name=name, description=description))
        return self.get_collection(name)

    def update_collection(
        self, name: str, description: str | None = None, new_name: str | None = None
    ) -> CollectionSummary:
        if new_name is not None and new_name.strip() != name:
            self.rename_collection(name, new_name)
            name = new_name.strip()
        if description is not None:
            with self.db.session() as session:
                self._collection(session, name).description = description
        return self.get_collection(name)

    def create_key(self, name: str, scopes: list[str]) -> tuple[KeyInfo, str]:
        """A new API key: (its record, the plaintext, shown only this once)."""
        return api_keys.create_key(self.db, name, scopes)

    def list_keys(self) -> list[KeyInfo]:
        return api_keys.list_keys(self.db)

    def revoke_key(self, key_id_or_prefix: str) -> KeyInfo:
        return api_keys.revoke_key(self.db, key_id_or_prefix)

    def verify_key(self, plaintext: str) -> KeyInfo | None:
        return api_keys.verify_key(self.db, plaintext)

    def get_ingest_job(self, job_id: int) -> IngestJobStatus:
        return get_ingest_job(self.db, job_id)

    def list_models(self) -> list[str]:
        """Installed chat models (checkpoint dirs under $EMBER_HOME/models), the configured one first."""
        names = [self.settings.llm_model]
        if self.settings.models_dir.is_dir():
            for path in sorted(self.settings.models_dir.iterdir()):
                if (path / "config.json").is_file() and path.name not in names:
                    names.append(path.name)
        return names

    # --- answers and conversations (logic: ember.platform.answers, ember.platform.conversations) ----
    @cached_property
    def llm(self) -> ChatBackend:
        """The agents' LLM: the remote OpenAI-compatible endpoint when llm_base_url is set, else local."""
        from ember.agents.backends import LocalBackend, OpenAICompatibleBackend

        if self.settings.llm_base_url:
            s = self.settings
            return OpenAICompatibleBackend(s.llm_base_url, s.llm_model, s.llm_api_key)
        return LocalBackend(self.chat_model, self.settings.llm_model)

    def ask(self, question: str, collection: str, agent: bool = False, **options) -> Answer:
        """A grounded answer (RAG or the agent); options: conversation_id, show_steps, sampling fields."""
        for event in self.ask_stream(question, collection, agent, **options):
            if event.kind == "done":
                return event.answer
        raise RuntimeError("answering ended without a 'done' event")

    def ask_stream(
        self, question: str, collection: str, agent: bool = False, **options
    ) -> Iterator[AnswerEvent]:
        """Events: "token" (text), "step" (with show_steps), "citations", then "done" carrying the Answer."""
        from ember.platform.answers import Answerer

        return Answerer(self).stream(question, collection, agent, **options)

    def list_conversations(self, collection: str | None = None) -> list[ConversationRecord]:
        from ember.platform.conversations import ConversationStore

        return ConversationStore(self.db).list(collection)

    def get_conversation(self, conversation_id: int) -> ConversationRecord:
        from ember.platform.conversations import ConversationStore

        return ConversationStore(self.db).get(conversation_id)

    def delete_conversation(self, conversation_id: int) -> None:
        from ember.platform.conversations import ConversationStore

        ConversationStore(self.db).delete(conversation_id)

    def get_chunk(self, chunk_id: int) -> Hit:
        """One stored chunk with its document title and location (what a citation points at)."""
        from ember.agents.tools import ToolError
        from ember.platform.answers import read_chunks

        try:
            return read_chunks(self.db, "chunk", chunk_id, 0)[0]
        except ToolError as exc:
            raise NotFoundError(f"chunk {chunk_id} does not exist") from exc
