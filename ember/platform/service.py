"""The facade over Ember's catalogue (SQL), search indexes and LLM.

The CLI, the HTTP API and the TUI call it for ingestion, collections, search, answers, conversations,
API keys and chat, and get the records of ember.platform.types back. The modules it delegates to
(ingest, answers, conversations, chunks, api_keys) are its parts, not entry points.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from ember.platform import api_keys, ingest_jobs
from ember.platform.chunks import read_chunks
from ember.platform.conversations import ConversationStore
from ember.platform.db import Database
from ember.platform.errors import BusyError, ConflictError, EmberError, InvalidInputError, NotFoundError
from ember.platform.ingest.pipeline import IngestHook, IngestOptions, IngestRun
from ember.platform.ingest.sources import SourceError, resolve_sources
from ember.platform.ingest.tokens import TokenCounter, token_counter_for
from ember.platform.ingest_jobs import IngestJobStatus, get_ingest_job
from ember.platform.settings import Settings, get_settings
from ember.platform.tables import Chunk, Collection, Document
from ember.platform.types import (
    Answer,
    CollectionSummary,
    ConversationRecord,
    DatabaseStatus,
    DocumentSummary,
    FileResult,
    IndexCheck,
    IndexDrift,
    IndexRebuild,
    IngestReport,
    KeyInfo,
    LLMQueueStats,
    RerankerOptions,
    TrainedReranker,
    UploadJobStatus,
)

if TYPE_CHECKING:  # heavy imports (torch, FAISS) stay out of `ember --help`
    from ember.agents.backends import ChatBackend
    from ember.agents.types import AnswerEvent
    from ember.llm.inference.chat import ChatDelta, ChatResult
    from ember.llm.inference.scheduler import LLMScheduler
    from ember.retrieval.embedder import Embedder
    from ember.retrieval.retriever import Retriever, SearchResult
    from ember.retrieval.store import IndexStore
    from ember.retrieval.types import Hit


def _collection_name_problem(name: str) -> str | None:
    """What is wrong with a collection name, by the index store's rule (the name is its folder's), or None."""
    from ember.retrieval.store import InvalidCollectionName, check_collection_name

    try:
        check_collection_name(name)
    except InvalidCollectionName as exc:
        return str(exc)
    return None


def _valid_collection_name(name: str) -> str:
    """The name without surrounding spaces; InvalidInputError before anything is written if it is unusable."""
    name = name.strip()
    if problem := _collection_name_problem(name):
        raise InvalidInputError(problem)
    return name


def _indexable(name: str) -> str:
    """A stored collection's name, checked before its index is touched (names were not always checked)."""
    if problem := _collection_name_problem(name):
        raise InvalidInputError(f"{problem}; rename the collection to give it a search index")
    return name


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
        self._llm: ChatBackend | None = None
        self._llm_lock = threading.Lock()

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
        on_indexed: Callable[[int], None] | None = None,
    ) -> IngestReport:
        """on_start gets the file count, on_file each file's result as it commits, on_indexed the chunks
        each embedding batch added to the index. Runs into one collection, from any process, take
        turns; a run first repairs what an interrupted one left out of the index (report.index_repair)."""
        from ember.retrieval.collection_index import IndexModelMismatch

        collection = _valid_collection_name(collection)
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
            with self.index_store.writer(collection):
                return run.run(collection, sources, options or IngestOptions(), on_file, on_indexed)
        except ValueError as exc:  # chunking parameters rejected before anything was stored
            raise InvalidInputError(str(exc)) from exc
        except IndexModelMismatch as exc:  # found before any file is stored; the message says what to run
            raise ConflictError(str(exc)) from exc

    # --- collections -----------------------------------------------------------------------------
    def _collection(self, session, name: str) -> Collection:  # noqa: ANN001
        collection = session.scalar(select(Collection).where(Collection.name == name))
        if collection is None:
            raise NotFoundError(f"collection '{name}' does not exist")
        return collection

    def collection_id(self, name: str) -> int:
        """The collection's id: a cheap existence check (one SELECT), NotFoundError when it is missing."""
        with self.db.session() as session:
            found = session.scalar(select(Collection.id).where(Collection.name == name))
        if found is None:
            raise NotFoundError(f"collection '{name}' does not exist")
        return found

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

    def _writers(self, *names: str) -> ExitStack:
        """The writer locks of these collections (those with usable names), taken in a fixed order."""
        stack = ExitStack()
        for name in sorted({n for n in names if _collection_name_problem(n) is None}):
            stack.enter_context(self.index_store.writer(name))
        return stack

    def delete_collection(self, name: str) -> None:
        with self._writers(name):  # not under a running ingest's feet
            with self.db.session() as session:
                session.delete(self._collection(session, name))
            if _collection_name_problem(name) is None:  # a name stored before names were checked: no index
                self.index_store.drop(name)

    def rename_collection(self, old: str, new: str) -> None:
        new = _valid_collection_name(new)
        with self._writers(old, new), self.db.session() as session:
            if session.scalar(select(Collection.id).where(Collection.name == new)) is not None:
                raise ConflictError(f"collection '{new}' already exists")
            self._collection(session, old).name = new
            # Inside the transaction: a failed move rolls the rename back. A name stored before names
            # were checked has no index to move.
            if _collection_name_problem(old) is None:
                self.index_store.rename(old, new)

    # --- documents -------------------------------------------------------------------------------
    def document_texts(self, collection: str) -> Iterator[tuple[str, str]]:
        """(source uri, text) of each document of ``collection``, its chunks joined in order: the
        training data `ember train prepare --collection` reads."""
        with self.db.session() as session:
            owner = self._collection(session, collection)
            rows = session.execute(
                select(Document.source_uri, Chunk.text)
                .join(Chunk, Chunk.document_id == Document.id)
                .where(Document.collection_id == owner.id)
                .order_by(Document.id, Chunk.ordinal)
            ).all()
        texts: dict[str, list[str]] = {}
        for uri, text in rows:
            texts.setdefault(uri, []).append(text)
        for uri, parts in texts.items():
            yield uri, "\n\n".join(parts)

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

        reranker_path = self.settings.reranker_path()
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
            self.collection_id(name)
        return self._retrieve(query, collections, k, mode, filters)

    def _retrieve(
        self,
        query: str,
        collections: Sequence[str],
        k: int,
        mode: str = "hybrid+rerank",
        filters: Mapping[str, object] | None = None,
    ) -> SearchResult:
        """search() over collections the caller knows exist."""
        from ember.retrieval.collection_index import IndexModelMismatch

        try:
            if self.settings.sync_indexes:
                from ember.platform import index_sync

                for name in collections:  # one SELECT and one stat each, unless the index lags SQL
                    index_sync.catch_up(self.db, self.index_store, name)
            return self.retriever.run(query, list(collections), k, filters, mode)
        except ValueError as exc:
            raise InvalidInputError(str(exc)) from exc
        except IndexModelMismatch as exc:  # the index needs a rebuild; the message says how
            raise ConflictError(str(exc)) from exc

    @cached_property
    def embedder(self) -> Embedder:
        from ember.retrieval.embedder import Embedder

        return Embedder(self.settings.embedding_model)

    def sentence_similarity(self, question: str, sentences: list[str]) -> list[float]:
        """Cosine similarity of each sentence to the question, with the collection indexes' model."""
        vectors = self.embedder.encode([question, *sentences])
        return (vectors[1:] @ vectors[0]).tolist()

    def embed(self, texts: Sequence[str]) -> list[list[float]]:
        """Normalized embeddings with the collection indexes' model."""
        if not texts:
            raise InvalidInputError("nothing to embed: the input is empty")
        return self.embedder.encode(list(texts)).tolist()

    # --- the local LLM ---------------------------------------------------------------------------
    def model_path(self, name_or_path: str | None = None) -> Path:
        """A model checkpoint directory: a path, or a name under settings.models_dir (default: llm_model)."""
        from ember.llm.imports.registry import resolve_model

        name = name_or_path or self.settings.llm_model
        try:
            return resolve_model(name, self.settings.models_dir)
        except FileNotFoundError as error:
            raise NotFoundError(f"{error}; run `ember models pull {name}`") from error

    @cached_property
    def scheduler(self) -> LLMScheduler:
        """The local model on its own worker thread: concurrent callers queue only for model calls."""
        from ember.llm.inference.chat import ChatModel
        from ember.llm.inference.scheduler import LLMScheduler

        path, compile_decode = self.model_path(), self.settings.llm_compile or None
        s = self.settings
        return LLMScheduler(
            lambda: ChatModel.load(path, compile_decode=compile_decode),
            max_running=s.llm_max_running,
            kv_blocks=s.llm_kv_blocks,
            token_budget=s.llm_token_budget,
            max_waiting=s.llm_max_queued,
        )

    def load_search_models(self) -> None:
        """Load the embedding model and the reranker now, so no search's timing includes loading them."""
        self.embedder  # noqa: B018 - cached, and shared with the collection indexes
        self.retriever  # noqa: B018 - loads the reranker when one is configured

    def warm_up(self, progress: Callable[[str], None] | None = None) -> None:
        """Load the search models and the LLM (a chat's or a server's start), so the first question
        waits only for its answer; ``progress`` gets a line as each stage begins."""
        report = progress or (lambda _line: None)
        report("loading search models…")
        self.load_search_models()
        report(f"loading model {Path(self.settings.llm_model).name}…")
        self.llm  # noqa: B018 - made once, under its lock: a question asked meanwhile waits for it

    def llm_queue(self) -> LLMQueueStats:
        """Requests waiting for, running on, and cancelled by the local model (zeros until it loads)."""
        scheduler = self.__dict__.get("scheduler")
        if scheduler is None:
            return LLMQueueStats(0, 0, 0, 0)
        return LLMQueueStats(
            scheduler.waiting,
            scheduler.running,
            scheduler.cancelled,
            scheduler.completed,
            scheduler.kv_blocks_used,
            scheduler.kv_blocks_total,
            scheduler.prefix_hit_rate,
            scheduler.steps,
            scheduler.peak_batch,
            scheduler.refused,
        )

    def close(self) -> None:
        """Stop the local model's worker (after its current token) and close the database pool."""
        scheduler = self.__dict__.get("scheduler")
        if scheduler is not None:
            scheduler.close()
        if "db" in self.__dict__:
            self.db.dispose()

    # --- collections, keys, jobs and models for the API and the TUI (issue 7) --------------------
    def create_collection(self, name: str, description: str = "") -> CollectionSummary:
        name = _valid_collection_name(name)
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

    # --- chat, answers and conversations (logic: ember.platform.answers, .conversations, .chunks) -----
    @property
    def llm(self) -> ChatBackend:
        """The LLM for chat and answers: the OpenAI-compatible endpoint if llm_base_url is set, else local.

        Made once, under a lock: request threads ask for it concurrently and the model must load once."""
        with self._llm_lock:
            if self._llm is None:
                from ember.agents.backends import LocalBackend, OpenAICompatibleBackend

                s = self.settings
                if s.llm_base_url:
                    self._llm = OpenAICompatibleBackend(s.llm_base_url, s.llm_model, s.llm_api_key)
                else:
                    self._llm = LocalBackend(self.scheduler, s.llm_model)
            return self._llm

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling: Any) -> ChatResult:
        """One assistant turn from the configured LLM (sampling: max_tokens, temperature, top_p, seed...)."""
        with _busy_as_error():
            return self.llm.chat(messages, tools, **sampling)

    def chat_stream(
        self, messages: list[dict], tools: list[dict] | None = None, **sampling: Any
    ) -> Iterator[ChatDelta]:
        """Like chat(), as text pieces; the last delta carries the whole ChatResult."""
        with _busy_as_error():
            yield from self.llm.stream(messages, tools, **sampling)

    def ask(
        self,
        question: str,
        collection: str,
        agent: bool = False,
        conversation_id: int | None = None,
        show_steps: bool = False,
        **sampling: Any,
    ) -> Answer:
        """A grounded answer (RAG or the agent), stored in a conversation (a new one, or conversation_id)."""
        events = self.ask_stream(question, collection, agent, conversation_id, show_steps, **sampling)
        for event in events:
            if event.kind == "done":
                return event.answer
        raise RuntimeError("answering ended without a 'done' event")

    def ask_stream(
        self,
        question: str,
        collection: str,
        agent: bool = False,
        conversation_id: int | None = None,
        show_steps: bool = False,
        **sampling: Any,
    ) -> Iterator[AnswerEvent]:
        """Events: "token" (text), "step" (an agent Step, with show_steps), "citations" (list[Citation]),
        then "done" carrying the Answer.

        The question, the sampling options and the collection are checked now, so callers fail fast
        (the API answers 400 or 404 without queueing); the model loads and answers as events are read.
        """
        from ember.platform.answers import check_question

        check_question(question, sampling)
        collection_id = self.collection_id(collection)  # the question's one collection check
        return self._answer(question, collection, collection_id, agent, conversation_id, show_steps, sampling)

    def _answer(
        self,
        question: str,
        collection: str,
        collection_id: int,
        agent: bool,
        conversation_id: int | None,
        show_steps: bool,
        sampling: dict[str, Any],
    ) -> Iterator[AnswerEvent]:
        from ember.platform.answers import Answerer

        # A generator, so self.llm (a local model load) happens on the thread that reads the events.
        answerer = Answerer(
            lambda query, names, k: self._retrieve(query, names, k).hits,
            partial(read_chunks, self.db),
            self.list_collections,
            self.collection_id,
            self.llm,
            ConversationStore(self.db),
            rewrite_with_llm=bool(self.settings.llm_base_url) or self.settings.llm_aligned,
            passages=self.settings.rag_passages,
            constrained_tool_calls=self.settings.agent_constrained_tool_calls,
            focus_sentences=self.settings.rag_focus_sentences,
            score_sentences=self.sentence_similarity,
        )
        with _busy_as_error():
            yield from answerer.stream(
                question, collection, collection_id, agent, conversation_id, show_steps, **sampling
            )

    def list_conversations(self, collection: str | None = None) -> list[ConversationRecord]:
        return ConversationStore(self.db).list(collection)

    def get_conversation(self, conversation_id: int) -> ConversationRecord:
        return ConversationStore(self.db).get(conversation_id)

    def delete_conversation(self, conversation_id: int) -> None:
        ConversationStore(self.db).delete(conversation_id)

    def get_chunk(self, chunk_id: int) -> Hit:
        """One stored chunk with its document title and location (what a citation points at)."""
        return read_chunks(self.db, "chunk", chunk_id, 0)[0]

    # --- operations: indexes, database, reranker, uploads ---
    def rebuild_index(
        self,
        collection: str,
        on_start: Callable[[int], None] | None = None,
        on_batch: Callable[[int], None] | None = None,
    ) -> IndexRebuild:
        """Re-embed and re-index a collection from SQL; on_start gets the chunk total, on_batch each batch."""
        from ember.platform import index_sync

        index = index_sync.rebuild(self.db, self.index_store, _indexable(collection), on_start, on_batch)
        return IndexRebuild(collection, len(index), index.embedding_model, index.dense.kind)

    def check_indexes(self, collections: Sequence[str] = ()) -> IndexCheck:
        """Each named collection's index against SQL; with none named, all and the orphaned index folders."""
        from ember.platform import index_sync

        names = list(collections)
        if not names:
            with self.db.session() as session:
                names = list(session.scalars(select(Collection.name).order_by(Collection.name)))
        drifts = [index_sync.check(self.db, self.index_store, _indexable(name)) for name in names]
        orphans = [] if collections else index_sync.orphaned_indexes(self.db, self.index_store)
        return IndexCheck(drifts, orphans)

    def repair_index(self, drift: IndexDrift, on_batch: Callable[[int], None] | None = None) -> None:
        """Index the missing chunks and drop the stale ones: those the check found, and any since."""
        from ember.platform import index_sync

        index_sync.repair(self.db, self.index_store, _indexable(drift.collection), on_batch)

    def remove_orphaned_index(self, name: str) -> None:
        """Delete an index folder whose collection no longer exists."""
        import shutil

        from ember.platform import index_sync

        if name not in index_sync.orphaned_indexes(self.db, self.index_store):
            raise NotFoundError(f"'{name}' is not an orphaned index folder")
        shutil.rmtree(self.index_store.root / name)

    def database_status(self) -> DatabaseStatus:
        """The schema revision the database is at, read without upgrading it."""
        from ember.platform.migrate import current_revision, head_revision

        s = self.settings
        database = Database(s.effective_database_url, s.sqlite_busy_timeout_ms, upgrade=False)
        try:
            url = database.engine.url.render_as_string(hide_password=True)
            return DatabaseStatus(url, current_revision(database.engine), head_revision())
        finally:
            database.dispose()

    def upgrade_database(self) -> DatabaseStatus:
        """Apply any pending migrations (opening the database already does) and report the revision."""
        from ember.platform.migrate import current_revision, upgrade_to_head

        head = upgrade_to_head(self.db.engine)
        url = self.db.engine.url.render_as_string(hide_password=True)
        return DatabaseStatus(url, current_revision(self.db.engine), head)

    def train_reranker(
        self,
        collection: str,
        name: str = "default",
        options: RerankerOptions | None = None,
        on_step: Callable[[int, int, float], None] | None = None,
    ) -> TrainedReranker:
        """Fine-tune a cross-encoder on queries mined from a collection's index, saved under
        models/rerankers/NAME with its training report ('default' is the one search uses).
        on_step gets (step, total steps, loss)."""
        import json
        from dataclasses import asdict

        from ember.retrieval.reranker_training import train_reranker

        index = self.index_store.get(collection)
        if not index.exists:
            raise NotFoundError(
                f"collection '{collection}' has no index; run `ember index rebuild -c {collection}`"
            )
        o = options or RerankerOptions()
        output = self.settings.rerankers_dir / name
        try:
            report = train_reranker(
                index,
                o.base,
                output,
                o.epochs,
                o.batch_size,
                o.learning_rate,
                o.max_length,
                o.heldout,
                o.max_queries,
                o.max_heldout,
                progress=on_step,
                negatives=o.negatives,
                layers=o.layers,
            )
        except ValueError as exc:  # too little text to mine queries from, or a bad layer count
            raise EmberError(str(exc)) from exc
        (output / "ember_training_report.json").write_text(json.dumps(asdict(report), indent=1))
        return TrainedReranker(output, report)

    def store_upload(self, collection: str, filename: str, content: bytes) -> UploadJobStatus:
        """Save an uploaded file under $EMBER_HOME/uploads/<collection>/ and queue its ingest job;
        ``ingest_upload`` runs the job."""
        from ember.platform.upload_files import save_upload

        collection_id = self.collection_id(collection)
        path = save_upload(self.settings.home / "uploads", collection, filename, content)
        return ingest_jobs.queue_upload(self.db, collection_id, filename, path)

    def ingest_upload(self, job_id: int) -> UploadJobStatus:
        """Ingest a queued upload, recording its progress and outcome on the job."""
        collection, path = ingest_jobs.start_upload(self.db, job_id)
        try:
            report = self.ingest(str(path), collection)  # one file: nothing else can be removed
        except Exception as exc:  # noqa: BLE001 - recorded on the job, which is what the client polls
            reason = str(exc) if isinstance(exc, EmberError) else f"{type(exc).__name__}: {exc}"
            ingest_jobs.finish_upload(self.db, job_id, None, [FileResult(path.as_uri(), "failed", reason)])
        else:
            ingest_jobs.finish_upload(self.db, job_id, report.job_id, report.results)
        return self.get_upload_job(job_id)

    def get_upload_job(self, job_id: int) -> UploadJobStatus:
        return ingest_jobs.get_upload_job(self.db, job_id)

    def claim_orphaned_uploads(self) -> list[int]:
        """The ids of upload jobs whose process stopped before they finished, now queued for this one;
        run each with ``ingest_upload``."""
        return ingest_jobs.claim_orphaned_uploads(self.db)


BUSY_RETRY_AFTER_S = 1  # a queued request waits about one generation's time slice; clients back off from here


@contextmanager
def _busy_as_error() -> Iterator[None]:
    """The local model's full queue (``llm_max_queued``) becomes BusyError, which the API answers 429."""
    from ember.llm.inference.scheduler import SchedulerBusy

    try:
        yield
    except SchedulerBusy as exc:
        raise BusyError(f"the local model is busy: {exc}; retry later", BUSY_RETRY_AFTER_S) from exc


def use_one_cpu_thread() -> None:
    """Run the calling thread's torch work on one core: for the API's threads, beside the local model's
    worker (ember.llm.inference.scheduler explains why)."""
    from ember.llm.inference.engine import use_one_cpu_thread as on_this_thread

    on_this_thread()
