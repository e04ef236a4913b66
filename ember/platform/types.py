"""What the facade (ember.platform.service) hands back: plain typed records, no storage or JSON.

Kept free of database and model code, so ingestion workers, the API and the TUI import it cheaply.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ember.agents.types import Citation, Step

if TYPE_CHECKING:  # torch stays out of this module
    from ember.retrieval.reranker_training import TrainingReport

SCOPES = ("read", "write", "admin")  # an API key's scopes; each includes the ones before it
OUTCOMES = ("added", "updated", "unchanged", "removed", "failed", "skipped")  # of one ingested file


@dataclass
class Answer:
    text: str
    citations: list[Citation]
    steps: list[Step]
    flags: list[str]
    usage: dict[str, int]  # prompt_tokens, completion_tokens
    timings_ms: dict[str, float]
    conversation_id: int
    message_id: int
    path: str  # "rag", "agent" or "agent_fallback"
    query: str  # what was searched: the question, or its stand-alone rewrite
    # Why the agent did not finish on its own: "no_tool_call", "malformed_tool_call" or the loop
    # guard's "repeated_call" (path "agent_fallback"); the loop guard's "max_steps" or "token_budget"
    # (path "agent"); "" otherwise.
    fallback_reason: str = ""
    # The chunks whose passages were in the model's prompt, in the order first shown, and each one's
    # document id (same order): "did the gold passage reach the prompt" is measured on these.
    prompt_chunk_ids: list[int] = field(default_factory=list)
    prompt_document_ids: list[int] = field(default_factory=list)


# How each fallback reason reads to a person; the chat and the CLI both say it.
FALLBACK_REASONS = {
    "no_tool_call": "the model called no tool",
    "malformed_tool_call": "the model's tool call stayed malformed after a repair",
    "max_steps": "the agent reached its step limit",
    "repeated_call": "the model repeated the same tool call",
    "token_budget": "the agent spent its token budget",
}


def describe_fallback(path: str, reason: str) -> str:
    """One line saying that, and why, an agent answer did not come from the agent's own plan; "" if it did."""
    why = FALLBACK_REASONS.get(reason, reason.replace("_", " "))
    if path == "agent_fallback":
        return f"agent fell back to one search and answer: {why or 'the model called no tool'}"
    return f"agent stopped early: {why}" if reason else ""


@dataclass(frozen=True)
class MessageRecord:
    id: int
    role: str
    content: str
    rewritten_query: str | None
    citations: list[Citation]
    steps: list[Step]
    metadata: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ConversationRecord:
    id: int
    title: str
    mode: str
    collection: str | None
    created_at: datetime
    updated_at: datetime
    message_count: int
    messages: list[MessageRecord] = field(default_factory=list)


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


@dataclass(frozen=True)
class KeyInfo:
    id: int
    name: str
    prefix: str
    scopes: list[str]
    created_at: datetime
    last_used_at: datetime | None
    revoked_at: datetime | None

    def allows(self, scope: str) -> bool:
        """True when one of the key's scopes is ``scope`` or ranks above it."""
        wanted = SCOPES.index(scope)
        return any(SCOPES.index(s) >= wanted for s in self.scopes if s in SCOPES)


@dataclass(frozen=True)
class FileResult:
    source_uri: str
    outcome: str  # one of OUTCOMES
    reason: str = ""
    chunks: int = 0
    size_bytes: int = 0


@dataclass
class IngestReport:
    job_id: int
    collection: str
    results: list[FileResult] = field(default_factory=list)
    seconds: float = 0.0
    index_repair: IndexDrift | None = None  # what an interrupted run had left out of the index, now fixed

    @property
    def counts(self) -> dict[str, int]:
        counted = Counter(r.outcome for r in self.results)
        return {outcome: counted.get(outcome, 0) for outcome in OUTCOMES}

    @property
    def failed(self) -> list[FileResult]:
        return [r for r in self.results if r.outcome == "failed"]

    @property
    def chunks_written(self) -> int:
        return sum(r.chunks for r in self.results if r.outcome in ("added", "updated"))


@dataclass(frozen=True)
class UploadJobStatus:
    """An API upload's ingest job: a row in ingest_jobs, so every API worker can report it."""

    id: int
    collection: str
    filename: str  # as uploaded
    status: str  # queued | running | completed | failed | interrupted
    error: str | None
    ingest_job_id: int | None  # the ingest run that took the file
    counts: dict
    chunks_written: int


@dataclass(frozen=True)
class LLMQueueStats:
    """The local model's scheduler: requests waiting, generating, cancelled and completed; KV cache
    blocks in use and in all, and the share of prompt blocks found in the prefix cache; engine steps, the
    most sequences one step decoded, and requests refused because the queue was full."""

    waiting: int
    running: int
    cancelled: int
    completed: int
    kv_blocks_used: int = 0
    kv_blocks_total: int = 0
    prefix_hit_rate: float = 0.0
    steps: int = 0
    peak_batch: int = 0
    refused: int = 0


# --- operations: indexes, database, reranker ---
@dataclass(frozen=True)
class IndexDrift:
    """One collection's index against SQL, the source of truth."""

    collection: str
    indexed: int  # chunks in the index
    missing: frozenset[int] = frozenset()  # chunk ids in SQL, not in the index
    stale: frozenset[int] = frozenset()  # chunk ids in the index, gone from SQL

    @property
    def clean(self) -> bool:
        return not self.missing and not self.stale


@dataclass(frozen=True)
class IndexCheck:
    drifts: list[IndexDrift]
    orphans: list[str]  # index folders whose collection no longer exists


@dataclass(frozen=True)
class IndexRebuild:
    collection: str
    chunks: int
    embedding_model: str
    dense_kind: str  # flat, ivf or hnsw


@dataclass(frozen=True)
class DatabaseStatus:
    url: str  # password hidden
    revision: str | None  # None: no schema yet
    head: str  # the newest migration

    @property
    def up_to_date(self) -> bool:
        return self.revision == self.head


@dataclass(frozen=True)
class RerankerOptions:
    base: str = "sentence-transformers/all-MiniLM-L6-v2"  # encoder checkpoint to fine-tune
    epochs: int = 1
    batch_size: int = 4  # queries per step, each with its negatives
    negatives: int = 7  # BM25 hard negatives per query
    layers: int | None = None  # keep the base encoder's first N layers
    learning_rate: float = 3e-5
    max_length: int = 128  # tokens per pair, in training and at search
    max_queries: int | None = None
    heldout: float = 0.2  # fraction of documents held out
    max_heldout: int = 200


@dataclass(frozen=True)
class TrainedReranker:
    path: Path
    report: TrainingReport
