"""A stand-in for a large remote model behind an OpenAI-compatible server (vLLM, llama.cpp's server):
every completion takes a fixed time and requests are served side by side, as a batching GPU server
serves them. It answers with a short sentence citing passage [1], streamed or not.

It measures Ember's side only: whether Ember's RAG requests overlap while the LLM works elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import StreamingResponse

ANSWER = ["The", " passage", " answers", " this", " [1]", "."]


def make_app(latency_s: float) -> FastAPI:
    app = FastAPI()
    usage = {"prompt_tokens": 1000, "completion_tokens": len(ANSWER), "total_tokens": 1000 + len(ANSWER)}

    @app.post("/v1/chat/completions")
    async def completions(request: Request):  # noqa: ANN202
        body = await request.json()
        if not body.get("stream"):
            await asyncio.sleep(latency_s)
            message = {"role": "assistant", "content": "".join(ANSWER)}
            return {"choices": [{"index": 0, "message": message, "finish_reason": "stop"}], "usage": usage}

        async def events() -> AsyncIterator[str]:
            await asyncio.sleep(latency_s / 2)  # time to first token
            for piece in ANSWER:
                await asyncio.sleep(latency_s / 2 / len(ANSWER))
                yield f"data: {json.dumps({'choices': [{'index': 0, 'delta': {'content': piece}}]})}\n\n"
            done = {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}
            yield f"data: {json.dumps(done)}\n\n"
            yield f"data: {json.dumps({'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(events(), media_type="text/event-stream")

    return app


@contextmanager
def serve_remote(latency_s: float) -> Iterator[str]:
    """Run the stand-in on a free loopback port in a thread; yields its /v1 base URL."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(make_app(latency_s), host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
