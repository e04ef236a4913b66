"""The LLM behind the graphs: the local engine or a remote OpenAI-compatible endpoint, one interface.

Both take OpenAI-shaped messages and tool schemas and return ``ember.llm.inference.chat.ChatResult``
(text, parsed tool calls, malformed ones, usage), so the LangChain adapter and the graphs never care which
one runs. Each names the tool-call format its model writes, for prompts that show the model an example.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Protocol

import httpx

from ember.llm.inference.chat import ChatDelta, ChatModel, ChatResult, Usage
from ember.llm.inference.constrained_tool_calls import tool_call_constraint
from ember.llm.inference.sampling import LogitsProcessor
from ember.llm.inference.scheduler import LLMScheduler
from ember.llm.inference.tool_calls import (
    HERMES,
    MalformedToolCall,
    ToolCall,
    ToolCallFormat,
    tool_call_format,
)


class ChatBackend(Protocol):
    name: str
    context_window: int
    tool_call_format: ToolCallFormat

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult: ...

    def stream(
        self, messages: list[dict], tools: list[dict] | None = None, **sampling
    ) -> Iterator[ChatDelta]: ...

    def count_tokens(self, text: str) -> int: ...

    def tool_call_constraint(self, tools: list[dict], force_open: bool) -> LogitsProcessor | None:
        """A logits processor that keeps this backend's tool calls well-formed; None if it cannot."""
        ...


class LocalBackend:
    """Ember's own engine: a ``ChatModel``, or the ``LLMScheduler`` that owns one for concurrent callers."""

    def __init__(self, model: ChatModel | LLMScheduler, name: str = "local") -> None:
        self.model, self.name = model, name
        self.context_window = model.engine.model.config.max_seq_len
        self.tool_call_format = tool_call_format(model.engine.tokenizer)

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        return self.model.chat(messages, tools, **sampling)

    def stream(
        self, messages: list[dict], tools: list[dict] | None = None, **sampling
    ) -> Iterator[ChatDelta]:
        return self.model.stream(messages, tools, **sampling)

    def count_tokens(self, text: str) -> int:
        return self.model.engine.tokenizer.count_tokens(text)

    def tool_call_constraint(self, tools: list[dict], force_open: bool) -> LogitsProcessor | None:
        return tool_call_constraint(self.model.engine.tokenizer, tools, self.tool_call_format, force_open)


# Sampling fields an OpenAI-compatible server understands, by our name → its name.
_REMOTE_SAMPLING = {
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "stop": "stop",
}


CHARS_PER_TOKEN = 3


class RemoteError(RuntimeError):
    """The remote endpoint failed or answered something that is not a chat completion."""


class OpenAICompatibleBackend:
    """Any server speaking ``POST {base_url}/chat/completions`` (vLLM, llama.cpp, another Ember)."""

    def __init__(
        self,
        base_url: str,
        model: str,
        api_key: str = "",
        context_window: int = 8192,
        timeout_s: float = 120.0,
        client: httpx.Client | None = None,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"llm_base_url must start with http:// or https://, got {base_url!r}")
        self.name, self.context_window = model, context_window
        # The server parses calls itself; most serve models that write Hermes/Qwen-style markup.
        self.tool_call_format = HERMES
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.client = client or httpx.Client(
            base_url=base_url.rstrip("/"), headers=headers, timeout=timeout_s
        )

    def _body(self, messages: list[dict], tools: list[dict] | None, sampling: dict, stream: bool) -> dict:
        body: dict = {"model": self.name, "messages": messages, "stream": stream}
        if tools:
            body["tools"] = tools
        body.update(
            {_REMOTE_SAMPLING[k]: v for k, v in sampling.items() if k in _REMOTE_SAMPLING and v is not None}
        )
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        response = self.client.post("/chat/completions", json=self._body(messages, tools, sampling, False))
        if response.status_code != 200:
            raise RemoteError(
                f"{self.client.base_url} answered {response.status_code}: {response.text[:300]}"
            )
        try:
            choice = response.json()["choices"][0]
            usage = response.json().get("usage") or {}
        except (ValueError, KeyError, IndexError) as exc:
            raise RemoteError(
                f"{self.client.base_url} returned no chat completion: {response.text[:300]}"
            ) from exc
        message = choice.get("message") or {}
        calls, malformed = _tool_calls(message.get("tool_calls") or [])
        return ChatResult(
            message.get("content") or "",
            calls,
            malformed,
            Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            choice.get("finish_reason") or "stop",
        )

    def stream(
        self, messages: list[dict], tools: list[dict] | None = None, **sampling
    ) -> Iterator[ChatDelta]:
        text, reason, usage = [], "stop", {}
        pending: dict[int, dict] = {}  # streamed tool calls arrive in pieces, keyed by index
        with self.client.stream(
            "POST", "/chat/completions", json=self._body(messages, tools, sampling, True)
        ) as r:
            if r.status_code != 200:
                raise RemoteError(f"{self.client.base_url} answered {r.status_code}: {r.read()[:300]!r}")
            for line in r.iter_lines():
                if not line.startswith("data:") or line.strip() == "data: [DONE]":
                    continue
                event = json.loads(line[5:])
                usage = event.get("usage") or usage
                for choice in event.get("choices") or []:
                    delta = choice.get("delta") or {}
                    reason = choice.get("finish_reason") or reason
                    for piece in delta.get("tool_calls") or []:
                        call = pending.setdefault(
                            piece.get("index", 0), {"function": {"name": "", "arguments": ""}}
                        )
                        call["id"] = piece.get("id") or call.get("id", "")
                        function = piece.get("function") or {}
                        call["function"]["name"] += function.get("name") or ""
                        call["function"]["arguments"] += function.get("arguments") or ""
                    if delta.get("content"):
                        text.append(delta["content"])
                        yield ChatDelta(delta["content"])
        calls, malformed = _tool_calls([pending[i] for i in sorted(pending)])
        result = ChatResult(
            "".join(text),
            calls,
            malformed,
            Usage(usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)),
            reason,
        )
        yield ChatDelta("", result)

    def count_tokens(self, text: str) -> int:
        # The remote tokenizer is unknown (and fetching one needs the network): about 3 characters per
        # token over-counts English for BPE vocabularies, which keeps the prompt inside the budget.
        return -(-len(text) // CHARS_PER_TOKEN)

    def tool_call_constraint(self, tools: list[dict], force_open: bool) -> LogitsProcessor | None:
        return None  # the server decodes; OpenAI's API has no per-token constraint


def _tool_calls(raw: list[dict]) -> tuple[list[ToolCall], list[MalformedToolCall]]:
    calls, malformed = [], []
    for number, item in enumerate(raw):
        function = item.get("function") or {}
        arguments = function.get("arguments") or "{}"
        try:
            parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
        except json.JSONDecodeError as exc:
            malformed.append(MalformedToolCall(json.dumps(item), f"arguments are not valid JSON: {exc}"))
            continue
        if not function.get("name") or not isinstance(parsed, dict):
            malformed.append(
                MalformedToolCall(json.dumps(item), "a tool call needs a name and object arguments")
            )
            continue
        calls.append(ToolCall(function["name"], parsed, item.get("id") or f"call_{number}"))
    return calls, malformed
