"""The records that flow through retrieval: what the platform hands in, what a search hands back."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class ChunkRecord:
    """One chunk as the platform stores it; the index keys everything by ``chunk_id``."""

    chunk_id: int
    document_id: int
    text: str
    title: str = ""
    heading_path: str = ""
    page: int | None = None
    source: str = ""


@dataclass(frozen=True)
class StageResult:
    """Where one retrieval stage put a chunk: 1-based rank and the stage's own score."""

    rank: int
    score: float


@dataclass
class Hit:
    chunk_id: int
    document_id: int
    title: str
    location: str
    text: str
    score: float
    collection: str = ""
    stages: dict[str, StageResult] = field(default_factory=dict)


def location_of(record: ChunkRecord) -> str:
    """A human-readable place in the document: heading path and page when known."""
    parts = [record.heading_path] if record.heading_path else []
    if record.page is not None:
        parts.append(f"p. {record.page}")
    return " · ".join(parts)
