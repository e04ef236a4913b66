"""OpenAI's response shapes for chat completions: whole responses, stream chunks and SSE framing."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any


def completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def tool_calls_out(calls: list) -> list[dict]:
    return [
        {
            "id": call.id or f"call_{i}",
            "type": "function",
            "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)},
        }
        for i, call in enumerate(calls)
    ]


def usage_out(prompt_tokens: int, completion_tokens: int) -> dict:
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def completion(
    cid: str,
    model: str,
    text: str,
    tool_calls: list,
    finish_reason: str,
    usage: dict,
    ember: dict | None = None,
) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": text if text or not tool_calls else None}
    if tool_calls:
        message["tool_calls"] = tool_calls_out(tool_calls)
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": usage,
    }
    if ember is not None:
        body["ember"] = ember
    return body


def chunk(
    cid: str,
    model: str,
    delta: dict,
    finish_reason: str | None = None,
    usage: dict | None = None,
    ember: dict | None = None,
) -> dict[str, Any]:
    choices = (
        []
        if usage is not None
        else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}]
    )
    body: dict[str, Any] = {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "choices": choices,
    }
    if usage is not None:
        body["usage"] = usage
    if ember is not None:
        body["ember"] = ember
    return body


def sse(payload: dict | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


DONE = sse("[DONE]")
