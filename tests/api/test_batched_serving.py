"""Through the real HTTP server, concurrent chats decode together in the scheduler's batch, and a full
queue answers 429 with Retry-After instead of queueing without bound.

A tiny random-weight model (SmolLM2's tokenizer, 2 layers of width 64) installed as a model directory
keeps each token to milliseconds; what is checked is where the tokens were decoded. Greedy, it writes
words and never stops before max_tokens."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path

import httpx
import openai
import pytest
import torch

from ember.llm.inference.checkpoint import save_model
from ember.llm.inference.config import ModelConfig
from ember.llm.inference.model import Transformer
from ember.llm.tokenizer.gguf_import import load_gguf_tokenizer
from ember.platform.api.app import create_app
from ember.platform.service import BUSY_RETRY_AFTER_S, EmberService
from ember.platform.settings import Settings
from tests.api.server import running

MODEL = "tiny-random"


@pytest.fixture(scope="module")
def tiny_models_dir(smollm2_gguf, tmp_path_factory) -> Path:
    tokenizer = load_gguf_tokenizer(smollm2_gguf)
    torch.manual_seed(0)
    # Untied: with tied random embeddings, greedy decoding repeats the prompt's last token (a newline).
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=64,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_dim=128,
        max_seq_len=4096,
        tie_embeddings=False,
    )
    models = tmp_path_factory.mktemp("tiny-models")
    save_model(Transformer(config).eval(), models / MODEL, tokenizer=tokenizer)
    return models


@contextmanager
def serve(tmp_path: Path, models: Path, **settings) -> Iterator[tuple[str, EmberService]]:
    home = tmp_path / "home"
    service = EmberService(
        Settings(
            home=home,
            database_url=f"sqlite:///{home / 'ember.db'}",
            llm_model=str(models / MODEL),
            sync_indexes=False,
            api_max_tokens=4000,
            **settings,
        )
    )
    with running(create_app(service, auth_required=False, owns_service=True)) as url:
        yield url, service


def engine_metric(url: str, name: str) -> float:
    """One ``ember_engine_*`` value from the server's /metrics, as Prometheus scrapes it."""
    lines = httpx.get(f"{url}/metrics").text.splitlines()
    return float(next(line for line in lines if line.startswith(f"{name} ")).split()[1])


def chat_body(content: str, max_tokens: int, stream: bool) -> dict:
    body = {"model": MODEL, "messages": [{"role": "user", "content": content}], "max_tokens": max_tokens}
    if stream:
        body |= {"stream": True, "stream_options": {"include_usage": True}}
    return body


async def streamed_tokens(http: httpx.AsyncClient, content: str, max_tokens: int) -> int:
    """The completion tokens of one streamed chat, from its usage chunk."""
    tokens = 0
    async with http.stream("POST", "/v1/chat/completions", json=chat_body(content, max_tokens, True)) as r:
        assert r.status_code == 200
        async for line in r.aiter_lines():
            if line.startswith("data: {"):
                tokens = (json.loads(line[6:]).get("usage") or {}).get("completion_tokens", tokens)
    return tokens


def test_concurrent_http_chats_decode_in_the_same_engine_steps(tiny_models_dir, tmp_path):
    clients, max_tokens = 8, 120
    with serve(tmp_path, tiny_models_dir, llm_max_running=clients) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as http:  # loads the model before the timed part
            assert http.post("/v1/chat/completions", json=chat_body("warm up", 2, False)).status_code == 200
        steps_before = engine_metric(url, "ember_engine_steps")

        async def all_at_once() -> list[int]:
            async with httpx.AsyncClient(base_url=url, timeout=120) as http:
                return await asyncio.gather(
                    *(
                        streamed_tokens(http, f"Question {i}: what is {i} plus {i}?", max_tokens)
                        for i in range(clients)
                    )
                )

        tokens = asyncio.run(all_at_once())
        steps = engine_metric(url, "ember_engine_steps") - steps_before
        assert tokens == [max_tokens] * clients  # the random model never stopped early
        # One at a time would take a step per token (960) and never batch more than one sequence.
        assert engine_metric(url, "ember_engine_peak_batch") == clients
        assert steps < 2 * max_tokens, f"{steps} engine steps for {sum(tokens)} tokens"


def test_a_full_queue_answers_429_with_retry_after(tiny_models_dir, tmp_path):
    with serve(tmp_path, tiny_models_dir, llm_max_running=1, llm_max_queued=1) as (url, service):
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=60)
        with httpx.Client(base_url=url, timeout=60) as http, ThreadPoolExecutor(1) as pool:
            # A holds the one running slot for thousands of tokens; B takes the one queue place.
            with http.stream("POST", "/v1/chat/completions", json=chat_body("A", 4000, True)) as long_run:
                lines = long_run.iter_lines()  # kept: dropping the iterator closes the stream
                next(lines)  # headers and the first chunk: A is decoding
                b = pool.submit(
                    httpx.post, f"{url}/v1/chat/completions", json=chat_body("B", 4, False), timeout=60
                )
                deadline = time.monotonic() + 20
                while service.scheduler.waiting < 1 and time.monotonic() < deadline:
                    time.sleep(0.01)
                assert (service.scheduler.running, service.scheduler.waiting) == (1, 1)

                with pytest.raises(openai.RateLimitError) as refused:
                    client.chat.completions.create(
                        model=MODEL, messages=[{"role": "user", "content": "C"}], max_tokens=4
                    )
                assert refused.value.status_code == 429
                assert refused.value.response.headers["retry-after"] == str(BUSY_RETRY_AFTER_S)
                assert refused.value.code == "server_busy"
                assert refused.value.type == "rate_limit_error"
                assert "busy" in refused.value.message

                streamed = http.post("/v1/chat/completions", json=chat_body("D", 4, True))
                assert streamed.status_code == 429  # refused before any event is streamed
                assert streamed.json()["error"]["code"] == "server_busy"
            # Leaving A's stream cancels it: B runs, and the queue takes requests again.
            assert b.result().status_code == 200
            assert engine_metric(url, "ember_engine_refused_requests") == 2
            answer = client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "E"}], max_tokens=4
            )
            assert answer.usage.completion_tokens == 4
