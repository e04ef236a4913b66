"""Does LLM work stay off the request path? Two measurements against real `uvicorn` server processes:

1. /v1/search p50 latency while 4 streamed chat generations run on the local model, against idle.
2. 8 concurrent RAG requests (the `ember` extension) with a remote LLM backend, against one request.
   The remote is bench/api/remote_llm.py: a fixed-latency OpenAI-compatible stand-in that serves
   requests side by side, as a batching GPU server does.

    python bench/api/concurrency.py --model DIR/smollm2-135m-instruct-int8 [--remote-latency 2]

Goals (issue 11): search p50 during generation ≤ 2× idle; 8 remote-backed RAG requests ≤ 3× one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import httpx
from harness import QUERIES, percentile, prepare_home, server_env, start_server
from remote_llm import serve_remote
from rich.console import Console
from rich.table import Table

STORY = [{"role": "user", "content": "Write a long story about a lighthouse keeper and the sea."}]
QUESTION = [{"role": "user", "content": "What does the pass statement do?"}]
console = Console(stderr=True)


async def search_latencies(http: httpx.AsyncClient, count: int, while_busy: asyncio.Event | None) -> list:
    """Sequential searches; with ``while_busy``, only those that ran entirely during generation count."""
    latencies = []
    for i in range(count):
        if while_busy is not None and not while_busy.is_set():
            break
        body = {"query": QUERIES[i % len(QUERIES)], "collections": ["bench"], "k": 8, "mode": "hybrid"}
        started = time.perf_counter()
        (await http.post("/v1/search", json=body)).raise_for_status()
        if while_busy is None or while_busy.is_set():
            latencies.append(time.perf_counter() - started)
    return latencies


async def generate(http: httpx.AsyncClient, model: str, max_tokens: int) -> int:
    """One streamed generation; its completion tokens (from the usage the server reports)."""
    body = {
        "model": model,
        "messages": STORY,
        "max_tokens": max_tokens,
        "stream": True,
        "temperature": 0,
        "stream_options": {"include_usage": True},
    }
    tokens = 0
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if line.startswith("data: {"):
                event = json.loads(line[6:])
                if "error" in event:
                    raise RuntimeError(f"generation failed: {event['error']}")
                tokens = (event.get("usage") or {}).get("completion_tokens", tokens)
    return tokens


async def search_under_generation(url: str, key: str, model: str, generations: int) -> dict:
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:
        await search_latencies(http, 6, None)  # warm up the embedder
        await generate(http, model, 8)  # and the model
        idle = await search_latencies(http, 40, None)
        busy_flag = asyncio.Event()
        busy_flag.set()

        async def all_generations() -> int:
            tokens = await asyncio.gather(*(generate(http, model, 256) for _ in range(generations)))
            busy_flag.clear()
            return sum(tokens)

        started = time.perf_counter()
        task = asyncio.create_task(all_generations())
        await asyncio.sleep(1.0)  # let the first generation start decoding
        busy = await search_latencies(http, 10_000, busy_flag)
        tokens = await task
        seconds = time.perf_counter() - started
    return {"idle": idle, "busy": busy, "tokens": tokens, "seconds": seconds}


async def rag_wall_times(url: str, key: str, concurrent: int) -> tuple[float, float]:
    body = {"model": "remote", "messages": QUESTION, "max_tokens": 64, "ember": {"collection": "bench"}}
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:

        async def one() -> None:
            response = await http.post("/v1/chat/completions", json=body)
            response.raise_for_status()

        await one()  # warm up: embedder, indexes, connections
        started = time.perf_counter()
        await one()
        single = time.perf_counter() - started
        started = time.perf_counter()
        await asyncio.gather(*(one() for _ in range(concurrent)))
        return single, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, type=Path, help="an Ember checkpoint dir (int8 SmolLM2)")
    parser.add_argument("--topics", type=int, default=40, help="pydoc topics to ingest")
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--rag-requests", type=int, default=8)
    parser.add_argument("--remote-latency", type=float, default=2.0, help="seconds per remote completion")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ember-bench-concurrency"))
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument(
        "--server-source", type=Path, help="run the servers from another checkout (A/B against a commit)"
    )
    args = parser.parse_args()
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"--model {args.model} is not an Ember checkpoint directory (no config.json)")

    console.print(f"ingesting {args.topics} pydoc topics…")
    service, report = prepare_home(args.workdir, args.topics, llm_model=str(args.model))
    _, key = service.create_key("bench", ["read"])
    url = f"http://127.0.0.1:{args.port}"

    console.print(f"search latency idle and during {args.generations} generations…")
    server = start_server(server_env(service), args.port, args.server_source)
    try:
        search = asyncio.run(search_under_generation(url, key, args.model.name, args.generations))
    finally:
        server.terminate()
        server.wait(30)

    console.print(f"{args.rag_requests} RAG requests against a remote LLM ({args.remote_latency} s each)…")
    with serve_remote(args.remote_latency) as remote_url:
        env = server_env(service, EMBER_LLM_BASE_URL=remote_url, EMBER_LLM_MODEL="remote")
        server = start_server(env, args.port, args.server_source)
        try:
            single, together = asyncio.run(rag_wall_times(url, key, args.rag_requests))
        finally:
            server.terminate()
            server.wait(30)

    idle, busy = search["idle"], search["busy"]
    server_code = f" · server from {args.server_source}" if args.server_source else ""
    table = Table(title=f"API concurrency · {report.chunks_written} chunks · {args.model.name}{server_code}")
    for column in ("measure", "anchor", "under load", "ratio", "goal"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    p50_idle, p50_busy = statistics.median(idle) * 1000, statistics.median(busy) * 1000
    table.add_row(
        f"/v1/search p50 (p95), idle vs {args.generations} generations ({len(busy)} searches)",
        f"{p50_idle:.0f} ms ({percentile(idle, 0.95) * 1000:.0f})",
        f"{p50_busy:.0f} ms ({percentile(busy, 0.95) * 1000:.0f})",
        f"{p50_busy / p50_idle:.2f}×",
        "≤ 2×",
    )
    table.add_row(
        f"  meanwhile: {search['tokens']} tokens generated in {search['seconds']:.0f} s",
        "",
        f"{search['tokens'] / search['seconds']:.1f} tok/s",
        "",
        "",
    )
    table.add_row(
        f"RAG wall time, 1 vs {args.rag_requests} concurrent (remote LLM)",
        f"{single:.2f} s",
        f"{together:.2f} s",
        f"{together / single:.2f}×",
        "≤ 3×",
    )
    Console().print(table)


if __name__ == "__main__":
    main()
