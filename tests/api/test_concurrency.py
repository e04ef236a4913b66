"""Concurrent streams each get their own answer; a client that leaves cancels its generation."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from openai import AsyncOpenAI

PROMPTS = [
    "What is the capital of France?",
    "Name a fruit that is yellow.",
    "What is 2 plus 2?",
    "Say hello in Spanish.",
    "What color is the sky?",
    "Name a large animal.",
    "What do bees make?",
    "What is the opposite of hot?",
    "Name a planet.",
    "What is frozen water called?",
    "How many legs does a spider have?",
    "What do cows drink?",
    "Name a musical instrument.",
    "What is the largest ocean?",
    "What language is spoken in Brazil?",
    "What do you call a baby cat?",
]


@pytest.mark.slow  # ~70 s on 2 shared cores: 32 generations
def test_sixteen_concurrent_streams_match_their_sequential_answers(base_url, keys, openai_client, model_id):
    expected = [
        openai_client.chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": p}], max_tokens=16
        )
        .choices[0]
        .message.content
        for p in PROMPTS
    ]
    assert len(set(expected)) > 8  # the prompts really have different answers

    async def stream_one(client: AsyncOpenAI, prompt: str) -> str:
        stream = await client.chat.completions.create(
            model=model_id, messages=[{"role": "user", "content": prompt}], max_tokens=16, stream=True
        )
        return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])

    async def all_at_once() -> list[str]:
        async with AsyncOpenAI(
            base_url=f"{base_url}/v1", api_key=keys["read"], timeout=300, max_retries=0
        ) as c:
            return await asyncio.gather(*(stream_one(c, p) for p in PROMPTS))

    streamed = asyncio.run(all_at_once())
    assert [s.strip() for s in streamed] == expected


def _cancelled(base_url: str) -> float:
    metrics = httpx.get(f"{base_url}/metrics").text
    return float(
        next(
            line for line in metrics.splitlines() if line.startswith("ember_engine_cancelled_jobs ")
        ).split()[1]
    )


def test_client_disconnect_cancels_generation(base_url, keys, model_id):
    before = _cancelled(base_url)
    body = {
        "model": model_id,
        "messages": [{"role": "user", "content": "Write a long story about a dragon."}],
        "max_tokens": 64,
        "stream": True,
    }
    headers = {"Authorization": f"Bearer {keys['read']}"}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, headers=headers, timeout=60) as r:
        lines = r.iter_lines()
        assert next(lines).startswith("data: ")
    deadline = time.monotonic() + 20
    while _cancelled(base_url) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _cancelled(base_url) == before + 1


def test_a_request_abandoned_in_the_queue_never_runs(base_url, keys, model_id):
    before = _cancelled(base_url)
    headers = {"Authorization": f"Bearer {keys['read']}"}
    story = {"model": model_id, "messages": [{"role": "user", "content": "Tell a story."}], "max_tokens": 48}
    with httpx.stream(
        "POST", f"{base_url}/v1/chat/completions", json=story | {"stream": True}, headers=headers, timeout=60
    ) as running:
        lines = running.iter_lines()
        next(lines)  # the engine is now busy with this stream
        with pytest.raises(httpx.ReadTimeout):  # this one waits in the queue; its client gives up
            httpx.post(f"{base_url}/v1/chat/completions", json=story, headers=headers, timeout=0.5)
        assert [line for line in lines if line][-1] == "data: [DONE]"  # the first stream is unaffected
    deadline = time.monotonic() + 20
    while _cancelled(base_url) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _cancelled(base_url) == before + 1
