"""A LangChain chat model over a ChatBackend: LangGraph reaches the local engine and remote endpoints alike.

Supports ``bind_tools`` (OpenAI tool schemas), token streaming, tool calls and invalid tool calls
(``AIMessage.invalid_tool_calls``: the agent graph's repair path reads them), and usage metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

from langchain_core.callbacks import CallbackManagerForLLMRun
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatGenerationChunk, ChatResult
from langchain_core.utils.function_calling import convert_to_openai_tool
from pydantic import ConfigDict, Field

from ember.agents.backends import ChatBackend
from ember.llm.inference.chat import ChatResult as EmberResult

_ROLES = {"system": "system", "human": "user", "ai": "assistant", "tool": "tool"}


def to_openai_messages(messages: Sequence[BaseMessage]) -> list[dict]:
    out = []
    for message in messages:
        if message.type not in _ROLES:
            raise ValueError(f"message type {message.type!r} is not supported; use system/human/ai/tool")
        item: dict[str, Any] = {"role": _ROLES[message.type], "content": message.text}
        if isinstance(message, AIMessage) and message.tool_calls:
            item["tool_calls"] = [
                {
                    "id": c["id"],
                    "type": "function",
                    "function": {"name": c["name"], "arguments": json.dumps(c["args"])},
                }
                for c in message.tool_calls
            ]
        if isinstance(message, ToolMessage):
            item["tool_call_id"] = message.tool_call_id
        out.append(item)
    return out


def _ai_fields(result: EmberResult) -> dict:
    return {
        "content": result.text,
        "tool_calls": [
            {"name": c.name, "args": c.arguments, "id": c.id, "type": "tool_call"} for c in result.tool_calls
        ],
        "invalid_tool_calls": [
            {"name": None, "args": m.raw, "id": None, "error": m.error, "type": "invalid_tool_call"}
            for m in result.malformed_tool_calls
        ],
        "usage_metadata": {
            "input_tokens": result.usage.prompt_tokens,
            "output_tokens": result.usage.completion_tokens,
            "total_tokens": result.usage.total_tokens,
        },
        "response_metadata": {"finish_reason": result.finish_reason},
    }


class EmberChatModel(BaseChatModel):
    """``EmberChatModel(backend=LocalBackend(chat_model), sampling={"max_tokens": 128})``."""

    model_config = ConfigDict(arbitrary_types_allowed=True)
    backend: Any  # a ChatBackend (a Protocol, which pydantic cannot validate)
    sampling: dict = Field(default_factory=dict)

    @property
    def _llm_type(self) -> str:
        return "ember"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any):  # noqa: ANN201 - a LangChain Runnable
        return self.bind(tools=[convert_to_openai_tool(t) for t in tools], **kwargs)

    def _call_args(self, messages: list[BaseMessage], stop: list[str] | None, kwargs: dict) -> tuple:
        sampling = {**self.sampling, **{k: v for k, v in kwargs.items() if k != "tools"}}
        if stop:
            sampling["stop"] = list(stop)
        return to_openai_messages(messages), kwargs.get("tools"), sampling

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> ChatResult:
        chat_messages, tools, sampling = self._call_args(messages, stop, kwargs)
        result = self.backend.chat(chat_messages, tools, **sampling)
        return ChatResult(generations=[ChatGeneration(message=AIMessage(**_ai_fields(result)))])

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: CallbackManagerForLLMRun | None = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        chat_messages, tools, sampling = self._call_args(messages, stop, kwargs)
        backend: ChatBackend = self.backend
        for delta in backend.stream(chat_messages, tools, **sampling):
            if delta.result is None:
                chunk = ChatGenerationChunk(message=AIMessageChunk(content=delta.text))
                if run_manager:
                    run_manager.on_llm_new_token(delta.text, chunk=chunk)
                yield chunk
            else:
                # The final chunk carries no new text, only the parsed tool calls and usage.
                fields = _ai_fields(delta.result) | {"content": ""}
                calls = fields.pop("tool_calls")
                fields.pop("invalid_tool_calls")
                chunks = [
                    {
                        "name": c["name"],
                        "args": json.dumps(c["args"]),
                        "id": c["id"],
                        "index": i,
                        "type": "tool_call_chunk",
                    }
                    for i, c in enumerate(calls)
                ]
                yield ChatGenerationChunk(message=AIMessageChunk(**fields, tool_call_chunks=chunks))
