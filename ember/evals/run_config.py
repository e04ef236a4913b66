"""What a run folder's config.json records about the system under test, so two runs can be compared:
the model and its quantization, the collection's chunking, retrieval, the prompts' version."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember.platform.service import EmberService


def prompt_version() -> str:
    """A short hash of the system prompts: it changes whenever a prompt's wording does."""
    from ember.agents.prompts import AGENT_SYSTEM, RAG_SYSTEM

    return hashlib.sha256((RAG_SYSTEM + AGENT_SYSTEM).encode()).hexdigest()[:10]


def quantization(service: EmberService) -> str:
    """The local checkpoint's quantization ("none", "int8", "int4"); "remote" for an endpoint."""
    if service.settings.llm_base_url:
        return "remote"
    from safetensors import safe_open

    from ember.llm.inference.checkpoint import WEIGHTS_FILE
    from ember.platform.errors import EmberError

    try:
        with safe_open(str(service.model_path() / WEIGHTS_FILE), framework="pt") as handle:
            return (handle.metadata() or {}).get("quantization", "none")
    except (OSError, ValueError, RuntimeError, EmberError):
        return "unknown"


def system_config(service: EmberService, collection: str) -> dict[str, Any]:
    s = service.settings
    chunking = service.get_collection(collection)
    return {
        "collection": collection,
        "model": s.llm_model,
        "llm_base_url": s.llm_base_url or None,
        "quantization": quantization(service),
        "chunk_size": chunking.chunk_size,
        "chunk_overlap": chunking.chunk_overlap,
        "embedding_model": s.embedding_model,
        "reranker": s.reranker_path(),
        "retrieval_mode": "hybrid" + ("+rerank" if s.reranker_path() else ""),
        "context_depth": s.rag_passages,
        "focus_sentences": s.rag_focus_sentences,
        "constrained_tool_calls": s.agent_constrained_tool_calls,
        "prompt_version": prompt_version(),
    }
