"""A minimal OpenAI-compatible /v1/chat/completions server over the real local model, for the remote
backend's tests: a real HTTP server on localhost, so requests, auth, SSE framing and parsing are exercised."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI, Header, HTTPException, Request
from fastapi.responses import StreamingResponse

from ember.agents.backends import LocalBackend
from ember.llm.inference.chat import ChatResult


def _message(result: ChatResult) -> dict:
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
        for c in result.tool_calls
    ]
    return {"role": "assistant", "content": result.text, **({"tool_calls": calls} if calls else {})}


def _usage(result: ChatResult) -> dict:
    u = result.usage
    return {
        "prompt_tokens": u.prompt_tokens,
        "completion_tokens": u.completion_tokens,
        "total_tokens": u.total_tokens,
    }


def make_app(backend: LocalBackend, api_key: str) -> FastAPI:
    app = FastAPI()

    @app.post("/v1/chat/completions")
    async def completions(request: Request, authorization: str = Header(default="")):  # noqa: ANN202
        if authorization != f"Bearer {api_key}":
            raise HTTPException(401, "invalid API key")
        body = await request.json()
        sampling = {k: body[k] for k in ("max_tokens", "temperature") if k in body}
        if not body.get("stream"):
            result = backend.chat(body["messages"], body.get("tools"), **sampling)
            choice = {"index": 0, "message": _message(result), "finish_reason": result.finish_reason}
            return {"object": "chat.completion", "choices": [choice], "usage": _usage(result)}

        def events() -> Iterator[str]:
            for delta in backend.stream(body["messages"], body.get("tools"), **sampling):
                if delta.result is None:
                    piece = {"index": 0, "delta": {"content": delta.text}}
                    yield f"data: {json.dumps({'choices': [piece]})}\n\n"
                    continue
                message = _message(delta.result)
                calls = [dict(c, index=i) for i, c in enumerate(message.get("tool_calls", []))]
                final = {
                    "index": 0,
                    "delta": {"tool_calls": calls},
                    "finish_reason": delta.result.finish_reason,
                }
                yield f"data: {json.dumps({'choices': [final]})}\n\n"
                yield f"data: {json.dumps({'choices': [], 'usage': _usage(delta.result)})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@contextmanager
def serve(app: FastAPI) -> Iterator[str]:
    """Run ``app`` on a free localhost port in a thread; yields its /v1 base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test OpenAI-compatible server did not start within 20 s")
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
