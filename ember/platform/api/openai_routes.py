"""/v1/models, /v1/chat/completions and /v1/embeddings in OpenAI's shapes."""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from fastapi import APIRouter, Depends, Request
from fastapi import Path as PathParam
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from ember.platform.api import chat_format as fmt
from ember.platform.api.auth import require
from ember.platform.api.cancellation import until_done_or_gone
from ember.platform.api.errors import ApiError, error_body, from_ember_error
from ember.platform.api.rag import rag_events
from ember.platform.api.schemas import ChatCompletionRequest, ChatMessage, EmbeddingRequest
from ember.platform.api.worker_threads import on_one_core
from ember.platform.errors import EmberError

router = APIRouter(prefix="/v1")
DEFAULT_MAX_TOKENS = 256


def served_model(request: Request) -> str:
    return Path(request.app.state.service.settings.llm_model).name


@router.get("/models", dependencies=[Depends(require("read"))])
def list_models(request: Request) -> dict:
    """The one model this server answers with (OpenAI's shape)."""
    created = int(request.app.state.started_at)
    return {
        "object": "list",
        "data": [{"id": served_model(request), "object": "model", "created": created, "owned_by": "ember"}],
    }


@router.get("/models/{model_id}", dependencies=[Depends(require("read"))])
def get_model(
    model_id: Annotated[str, PathParam(description="A model id from GET /v1/models.")], request: Request
) -> dict:
    """One model; 404 unless it is the served one."""
    if model_id != served_model(request):
        raise ApiError(404, f"model '{model_id}' is not served here", "model", "model_not_found")
    return {
        "id": model_id,
        "object": "model",
        "created": int(request.app.state.started_at),
        "owned_by": "ember",
    }


def _message(message: ChatMessage) -> dict[str, Any]:
    out: dict[str, Any] = {"role": "system" if message.role == "developer" else message.role}
    out["content"] = message.text()
    if message.tool_calls:
        out["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    return out


def sampling(body: ChatCompletionRequest, cap: int) -> dict[str, Any]:
    max_tokens = body.max_completion_tokens or body.max_tokens or min(DEFAULT_MAX_TOKENS, cap)
    if max_tokens > cap:
        param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        raise ApiError(
            400, f"{param} is {max_tokens}; this server allows at most {cap}", param, "max_tokens_cap"
        )
    params: dict[str, Any] = {"max_tokens": max_tokens, "seed": body.seed}
    if body.temperature is not None:
        params["temperature"] = body.temperature
    if body.top_p is not None:
        params["top_p"] = body.top_p
    if body.stop:
        params["stop"] = [body.stop] if isinstance(body.stop, str) else list(body.stop)
    return params


@router.post("/chat/completions", dependencies=[Depends(require("read"))])
async def chat_completions(body: ChatCompletionRequest, request: Request):  # noqa: ANN201
    """OpenAI chat completions, streamed or not, with tools. With the `ember` extension the answer
    comes from a collection (RAG or agent) and its citations, steps and conversation id come back in an
    `ember` field beside `choices`."""
    state = request.app.state
    model = served_model(request)
    if body.model != model:
        raise ApiError(
            404, f"model '{body.model}' is not served here; use '{model}'", "model", "model_not_found"
        )
    params = sampling(body, state.settings.api_max_tokens)
    if body.ember is not None:
        events = rag_events(state, body, params)
    else:
        events = _chat_events(state, body, params)
    timeout = state.settings.api_timeout_s
    deadline = asyncio.get_running_loop().time() + timeout
    first = await until_done_or_gone(request, anext(events), timeout)
    cid = fmt.completion_id()
    if body.stream:
        chunks = _sse(cid, model, body, first, events, deadline)
        return StreamingResponse(
            chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    async def rest() -> list[dict]:
        return [event async for event in events]

    remaining = max(deadline - asyncio.get_running_loop().time(), 0.001)
    collected = [first, *await until_done_or_gone(request, rest(), remaining)]
    done = collected[-1]
    return fmt.completion(
        cid, model, done["text"], done["tool_calls"], done["finish_reason"], done["usage"], done.get("ember")
    )


async def _chat_events(state, body: ChatCompletionRequest, params: dict) -> AsyncIterator[dict]:  # noqa: ANN001
    """The configured LLM's reply (local, or remote with llm_base_url) as {"delta": text} events, then
    one {"done": True, ...} event with the whole result."""
    messages = [_message(m) for m in body.messages]
    tools = [tool.model_dump() for tool in body.tools] if body.tools and body.tool_choice != "none" else None
    service = state.service

    def generate():  # noqa: ANN202 - runs on a worker thread: the local model (queued), or a remote stream
        return service.chat_stream(messages, tools, **params)

    started = None  # the first token's arrival: speed counts decoding, not time spent queued
    try:
        async for delta in state.workers.stream(generate):
            started = started or time.perf_counter()
            if delta.result is None:
                if delta.text:  # the chat model keeps tool-call markup out of its deltas
                    yield {"delta": delta.text}
                continue
            result = delta.result
            state.metrics.record_generation(
                result.usage.prompt_tokens, result.usage.completion_tokens, time.perf_counter() - started
            )
            yield {
                "done": True,
                "text": result.text,
                "tool_calls": result.tool_calls,
                "finish_reason": result.finish_reason,
                "usage": fmt.usage_out(result.usage.prompt_tokens, result.usage.completion_tokens),
            }
    except ValueError as exc:  # the model refused the input: bad roles, prompt longer than the context
        raise ApiError(400, str(exc), "messages") from exc


async def _sse(
    cid: str,
    model: str,
    body: ChatCompletionRequest,
    first: dict,
    events: AsyncIterator[dict],
    deadline: float,
) -> AsyncIterator[bytes]:
    yield fmt.sse(fmt.chunk(cid, model, {"role": "assistant", "content": ""}))
    try:
        async with asyncio.timeout_at(deadline):
            event = first
            while True:
                if "done" in event:
                    break
                if "delta" in event:
                    yield fmt.sse(fmt.chunk(cid, model, {"content": event["delta"]}))
                else:  # an ember extension event (agent step, citations) rides on an empty delta
                    yield fmt.sse(fmt.chunk(cid, model, {}, ember=event["ember"]))
                event = await anext(events)
    except Exception as exc:  # noqa: BLE001 - headers are sent: the error travels as the last event
        yield fmt.sse(_stream_error(exc))
        yield fmt.DONE
        return
    final: dict[str, Any] = {}
    if event["tool_calls"]:
        final["tool_calls"] = [
            {"index": i, **call} for i, call in enumerate(fmt.tool_calls_out(event["tool_calls"]))
        ]
    yield fmt.sse(fmt.chunk(cid, model, final, event["finish_reason"], ember=event.get("ember")))
    if body.stream_options and body.stream_options.include_usage:
        yield fmt.sse(fmt.chunk(cid, model, {}, usage=event["usage"]))
    yield fmt.DONE


def _stream_error(exc: Exception) -> dict:
    if isinstance(exc, TimeoutError):
        return error_body(504, "generation timed out and was cancelled", code="timeout")
    if isinstance(exc, EmberError):
        exc = from_ember_error(exc)
    if isinstance(exc, ApiError):
        return error_body(exc.status, exc.message, exc.param, exc.code)
    return error_body(500, f"internal error: {type(exc).__name__}")


@router.post("/embeddings", dependencies=[Depends(require("read"))])
async def embeddings(body: EmbeddingRequest, request: Request) -> dict:
    """Vectors from the configured embedding model (all-MiniLM-L6-v2 by default), float or base64."""
    service = request.app.state.service
    texts = [body.input] if isinstance(body.input, str) else body.input
    if any(not text for text in texts):
        raise ApiError(400, "input must not contain empty strings", "input")
    if len(texts) > 2048:
        raise ApiError(400, f"input has {len(texts)} items; at most 2048 per request", "input")
    vectors = await until_done_or_gone(
        request,
        run_in_threadpool(on_one_core, service.embed, texts),
        request.app.state.settings.api_timeout_s,
    )
    tokens = sum(service.token_counter.count_tokens(text) for text in texts)
    data = []
    for index, vector in enumerate(vectors):
        value: Any = vector
        if body.encoding_format == "base64":
            value = base64.b64encode(np.asarray(vector, dtype="<f4").tobytes()).decode()
        data.append({"object": "embedding", "index": index, "embedding": value})
    return {
        "object": "list",
        "data": data,
        "model": body.model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }
