"""What the graphs hand back: answers with citations and agent steps, and the events of a streamed run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ember.retrieval.types import Hit

I_DONT_KNOW = "I don't know."
# Passages a grounded answer reads, unless configured (the rag_passages setting). Few, for a small local
# model: on the dev set SmolLM2-135M matched 20% of factoids with 3 (first token 0.9 s), 19% with 5 and
# 14.5% with 8 (5.1 s); docs/benchmarks.md.
DEFAULT_PASSAGES = 3


@dataclass
class Citation:
    n: int
    chunk_id: int
    document_id: int
    title: str
    location: str
    quote: str  # the passage sentence that best matches the answer text citing it


@dataclass
class Step:
    thought: str
    tool: str
    arguments: dict
    observation: str
    latency_ms: float


@dataclass
class GroundedAnswer:
    text: str
    citations: list[Citation] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    # e.g. "no_relevant_passages", "no_citations", "invalid_citations", "citations_repaired",
    # "agent_fallback", "loop_guard:<reason>", "malformed_tool_call_repaired", "repetition_stopped"
    flags: list[str] = field(default_factory=list)
    usage: dict[str, int] = field(default_factory=lambda: {"prompt_tokens": 0, "completion_tokens": 0})
    timings_ms: dict[str, float] = field(default_factory=dict)
    path: str = "rag"  # "rag", "agent" (tools were called) or "agent_fallback"
    # Why the agent did not finish on its own: "no_tool_call", "malformed_tool_call" or the loop
    # guard's "repeated_call" (path "agent_fallback"); the loop guard's "max_steps" or "token_budget"
    # (path "agent"); "" when it did.
    fallback_reason: str = ""
    # The passages put in the model's prompt (RAG passages, or every passage a tool showed the agent),
    # in the order first shown: lets an eval ask whether the gold passage reached the model.
    prompt_chunk_ids: list[int] = field(default_factory=list)
    prompt_document_ids: list[int] = field(default_factory=list)  # the document of each chunk above

    def record_prompt_passages(self, hits: list[Hit]) -> None:
        """Add ``hits`` to the passages the model was shown, each chunk once."""
        for hit in hits:
            if hit.chunk_id not in self.prompt_chunk_ids:
                self.prompt_chunk_ids.append(hit.chunk_id)
                self.prompt_document_ids.append(hit.document_id)


@dataclass
class AnswerEvent:
    """``token`` (text), ``step`` (an agent Step), ``citations`` (list[Citation]) or ``done`` (answer)."""

    kind: str
    text: str = ""
    step: Step | None = None
    citations: list[Citation] | None = None
    answer: Any = None


def add_usage(total: dict[str, int], usage: dict | None) -> None:
    """Add LangChain usage metadata (input/output tokens) to a running total."""
    if usage:
        total["prompt_tokens"] += usage.get("input_tokens", 0)
        total["completion_tokens"] += usage.get("output_tokens", 0)
