"""The chat interface the agents and the API build on.

    model = ChatModel.load(checkpoint_dir)  # a name -> directory: ember.llm.imports.registry.resolve_model
    result = model.chat([{"role": "user", "content": "Hi"}], tools=None, max_tokens=64)
    result.text, result.tool_calls, result.malformed_tool_calls, result.usage

Prompts are rendered by the tokenizer's ``render_chat`` (the model's own chat template when it
has one, else Ember's). Tool calls are read and written in the tokenizer's tool-call format (see
tool_calls): when the template ignores tool schemas, the format's instructions go into the system
message; when it ignores the ``tool_calls`` field, earlier calls are written into the history as markup.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ember.llm.inference.engine import Engine, StreamChunk
from ember.llm.inference.sampling import SamplingParams
from ember.llm.inference.tool_calls import (
    MalformedToolCall,
    ToolCall,
    ToolMarkupFilter,
    fit_to_template,
    tool_call_format,
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
        self.tool_call_format = tool_call_format(engine.tokenizer)

    @classmethod
    def load(
        cls, directory: Path, device: str | None = None, compile_decode: bool | None = None
    ) -> ChatModel:
        return cls(Engine.load(directory, device=device, compile_decode=compile_decode))

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        """One assistant turn. ``sampling`` takes SamplingParams fields (max_tokens, temperature...)."""
        prompt = self.prompt(messages, tools)
        generation = self.engine.generate([prompt], SamplingParams(**sampling))[0]
        return self._result(generation.text, len(prompt), len(generation.token_ids), generation.finish_reason)

    def stream(
        self, messages: list[dict], tools: list[dict] | None = None, **sampling
    ) -> Iterator[ChatDelta]:
        """Like chat(), yielding the visible text as it is generated: tool-call markup stays hidden,
        and the deltas join to the final ``result.text``."""
        prompt = self.prompt(messages, tools)
        yield from self.deltas(len(prompt), self.engine.stream(prompt, SamplingParams(**sampling)))

    def deltas(self, prompt_tokens: int, chunks: Iterable[StreamChunk]) -> Iterator[ChatDelta]:
        """The visible deltas of an engine's stream chunks (the LLM scheduler feeds its own)."""
        text, count, reason = [], 0, "length"
        markup = ToolMarkupFilter(self.tool_call_format)
        for chunk in chunks:
            text.append(chunk.text)
            count += len(chunk.token_ids)
            reason = chunk.finish_reason or reason
            visible = markup.push(chunk.text)
            if visible:
                yield ChatDelta(visible)
        rest = markup.finish()
        if rest:
            yield ChatDelta(rest)
        yield ChatDelta("", self._result("".join(text), prompt_tokens, count, reason))

    def prompt(self, messages: list[dict], tools: list[dict] | None) -> list[int]:
        """The prompt's token ids: the chat template rendered, with the tool-call format fitted in."""
        if not messages:
            raise ValueError("messages is empty: a chat needs at least one message")
        messages, tools = fit_to_template(self.engine.tokenizer, messages, tools)
        return self.engine.tokenizer.render_chat(messages, tools=tools, add_generation_prompt=True)[0]

    def _result(self, text: str, prompt_tokens: int, completion_tokens: int, reason: str) -> ChatResult:
        parsed = self.tool_call_format.parse(text)
        if parsed.tool_calls and reason == "stop":
            reason = "tool_calls"
        return ChatResult(
            parsed.text, parsed.tool_calls, parsed.malformed, Usage(prompt_tokens, completion_tokens), reason
        )
