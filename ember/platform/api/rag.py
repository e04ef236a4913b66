"""The ``ember`` extension of chat completions: answer from a collection (RAG or agent) with citations.

It consumes the facade's ``ask_stream`` events (token, step, citations, done) and turns them into
the same event stream the plain chat path produces, with citations and steps in an ``ember`` field.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import asdict, is_dataclass
from typing import Any

from ember.platform.api import chat_format as fmt
from ember.platform.api.errors import ApiError
from ember.platform.api.schemas import ChatCompletionRequest
from ember.platform.errors import EmberError


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) else value


def _get(obj: Any, name: str, default: Any = None) -> Any:
    return obj.get(name, default) if isinstance(obj, dict) else getattr(obj, name, default)


def ember_fields(answer: Any) -> dict:
    return {
        "citations": [_plain(c) for c in _get(answer, "citations", []) or []],
        "steps": [_plain(s) for s in _get(answer, "steps", []) or []],
        "conversation_id": _get(answer, "conversation_id"),
        "message_id": _get(answer, "message_id"),
        "flags": _get(answer, "flags", []),
    }


async def rag_events(state, body: ChatCompletionRequest, params: dict) -> AsyncIterator[dict]:  # noqa: ANN001
    service, options = state.service, body.ember
    if not hasattr(service, "ask_stream"):
        raise ApiError(
            501, "answering from a collection is not available in this build", "ember", "not_built"
        )
    questions = [m for m in body.messages if m.role == "user"]
    if not questions:
        raise ApiError(400, "the ember extension needs a user message to answer", "messages")
    service.get_collection(options.collection)  # 404 before queueing
    question = questions[-1].text()
    kwargs = dict(agent=options.agent, conversation_id=options.conversation_id, show_steps=options.show_steps)

    def generate():  # noqa: ANN202 - runs on the engine thread
        return service.ask_stream(question, options.collection, **kwargs, **params)

    started = None  # the first answer token's arrival (retrieval and queueing are not decoding)
    try:
        async for event in state.engine.stream(generate):
            kind = _get(event, "kind")
            if kind == "token":
                started = started or time.perf_counter()
                yield {"delta": _get(event, "text", "")}
            elif kind == "step":
                yield {"ember": {"step": _plain(_get(event, "step"))}}
            elif kind == "citations":
                yield {"ember": {"citations": [_plain(c) for c in _get(event, "citations", [])]}}
            elif kind == "done":
                answer = _get(event, "answer")
                usage = _plain(_get(answer, "usage", {})) or {}
                prompt, completion = usage.get("prompt_tokens", 0), usage.get("completion_tokens", 0)
                state.metrics.record_generation(
                    prompt, completion, time.perf_counter() - started if started else 0.0
                )
                yield {
                    "done": True,
                    "text": _get(answer, "text", _get(answer, "answer", "")),
                    "tool_calls": [],
                    "finish_reason": "stop",
                    "usage": fmt.usage_out(prompt, completion),
                    "ember": ember_fields(answer),
                }
    except EmberError:
        raise
    except ValueError as exc:
        raise ApiError(400, str(exc), "messages") from exc
