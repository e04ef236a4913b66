"""The chat interface the agents and the API build on.

    model = ChatModel.load("smollm2-135m-instruct")
    result = model.chat([{"role": "user", "content": "Hi"}], tools=None, max_tokens=64)
    result.text, result.tool_calls, result.malformed_tool_calls, result.usage

Prompts are rendered by the tokenizer's ``render_chat`` (the model's own chat template when it
has one, else Ember's). When that template ignores tool schemas, Ember's tool instructions go into
the system message. Tool calls are parsed from ``<tool_call>`` blocks (see tool_calls).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ember.llm.inference.engine import Engine
from ember.llm.inference.sampling import SamplingParams
from ember.llm.inference.tool_calls import (
    MalformedToolCall,
    ToolCall,
    parse_tool_calls,
    with_tool_instructions,
)


@dataclass
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass
class ChatResult:
    text: str
    tool_calls: list[ToolCall] = field(default_factory=list)
    malformed_tool_calls: list[MalformedToolCall] = field(default_factory=list)
    usage: Usage = field(default_factory=lambda: Usage(0, 0))
    finish_reason: str = "stop"  # "stop", "length" or "tool_calls"


@dataclass
class ChatDelta:
    """A piece of streamed text; the last one also carries the complete ``result``."""

    text: str
    result: ChatResult | None = None


class ChatModel:
    """Messages (OpenAI shape) and tool schemas in; text and parsed tool calls out."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @classmethod
    def load(
        cls, name_or_path: str | Path, device: str | None = None, compile_decode: bool | None = None
    ) -> ChatModel:
        return cls(Engine.load(name_or_path, device=device, compile_decode=compile_decode))

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        """One assistant turn. ``sampling`` takes SamplingParams fields (max_tokens, temperature...)."""
        prompt = self._prompt(messages, tools)
        generation = self.engine.generate([prompt], SamplingParams(**sampling))[0]
        return self._result(generation.text, len(prompt), len(generation.token_ids), generation.finish_reason)

    def stream(
        self, messages: list[dict], tools: list[dict] | None = None, **sampling
    ) -> Iterator[ChatDelta]:
        """Like chat(), yielding text as it is generated (tool-call markup included)."""
        prompt = self._prompt(messages, tools)
        text, count, reason = [], 0, "length"
        for chunk in self.engine.stream(prompt, SamplingParams(**sampling)):
            text.append(chunk.text)
            count += len(chunk.token_ids)
            reason = chunk.finish_reason or reason
            if chunk.text:
                yield ChatDelta(chunk.text)
        yield ChatDelta("", self._result("".join(text), len(prompt), count, reason))

    def _prompt(self, messages: list[dict], tools: list[dict] | None) -> list[int]:
        if not messages:
            raise ValueError("messages is empty: a chat needs at least one message")
        tokenizer = self.engine.tokenizer
        ids, _ = tokenizer.render_chat(messages, tools=tools, add_generation_prompt=True)
        if tools and ids == tokenizer.render_chat(messages, tools=None, add_generation_prompt=True)[0]:
            # The model's template drops tool schemas (SmolLM2's does): describe them ourselves.
            ids, _ = tokenizer.render_chat(
                with_tool_instructions(messages, tools), add_generation_prompt=True
            )
        return ids

    @staticmethod
    def _result(text: str, prompt_tokens: int, completion_tokens: int, finish_reason: str) -> ChatResult:
        parsed = parse_tool_calls(text)
        if parsed.tool_calls and finish_reason == "stop":
            finish_reason = "tool_calls"
        return ChatResult(
            parsed.text,
            parsed.tool_calls,
            parsed.malformed,
            Usage(prompt_tokens, completion_tokens),
            finish_reason,
        )
