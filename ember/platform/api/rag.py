"""The ``ember`` extension of chat completions: answer from a collection (RAG or agent) with citations.

It consumes the facade's ``ask_stream`` events (token, step, citations, done) and turns them into
the same event stream the plain chat path produces, with citations and steps in an ``ember`` field.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

from ember.platform.api import chat_format as fmt
from ember.platform.api.errors import ApiError
from ember.platform.api.schemas import ChatCompletionRequest
from ember.platform.api.serialize import to_json
from ember.platform.errors import EmberError
from ember.platform.types import Answer


def ember_fields(answer: Answer) -> dict[str, Any]:
    return {
        "citations": to_json(answer.citations),
        "steps": to_json(answer.steps),
        "conversation_id": answer.conversation_id,
        "message_id": answer.message_id,
        "flags": answer.flags,
        "path": answer.path,
        "fallback_reason": answer.fallback_reason,
    }


async def rag_events(state, body: ChatCompletionRequest, params: dict) -> AsyncIterator[dict]:  # noqa: ANN001
    service, options = state.service, body.ember
    questions = [m for m in body.messages if m.role == "user"]
    if not questions:
        raise ApiError(400, "the ember extension needs a user message to answer", "messages")
    # The question and the collection are checked here, so a bad one is a 400/404 without queueing.
    events = service.ask_stream(
        questions[-1].text(),
        options.collection,
        options.agent,
        options.conversation_id,
        options.show_steps,
        **params,
    )
    started = None  # the first answer token's arrival (retrieval and queueing are not decoding)
    try:
        async for event in state.workers.stream(lambda: events):
            if event.kind == "token":
                started = started or time.perf_counter()
                yield {"delta": event.text}
            elif event.kind == "step":
                yield {"ember": {"step": to_json(event.step)}}
            elif event.kind == "citations":
                yield {"ember": {"citations": to_json(event.citations)}}
            elif event.kind == "done":
                answer: Answer = event.answer
                prompt, completion = answer.usage["prompt_tokens"], answer.usage["completion_tokens"]
                state.metrics.record_generation(
                    prompt, completion, time.perf_counter() - started if started else 0.0
                )
                yield {
                    "done": True,
                    "text": answer.text,
                    "tool_calls": [],
                    "finish_reason": "stop",
                    "usage": fmt.usage_out(prompt, completion),
                    "ember": ember_fields(answer),
                }
    except EmberError:
        raise
    except ValueError as exc:
        raise ApiError(400, str(exc), "messages") from exc
