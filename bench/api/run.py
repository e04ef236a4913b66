"""HTTP API throughput and latency on loopback: /v1/search and short chat completions at 1, 8 and 32
concurrent clients, against a real `uvicorn` server process with auth on.

The anchor is the same work called directly on the service facade in this process (no HTTP, one
caller), measured in the same run: the ratio shows what the API layer and queueing cost.

    python bench/api/run.py --model /path/to/smollm2-135m-instruct [--topics 40] [--workdir DIR]

The collection is CPython's pydoc reference topics (the sample collection's text), the first --topics of them.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from harness import QUERIES, percentile, prepare_home, server_env, start_server
from rich.console import Console
from rich.table import Table

from ember.platform.service import EmberService

CHAT = [{"role": "user", "content": "Name a colour."}]
CHAT_TOKENS = 8
LEVELS = (1, 8, 32)
console = Console(stderr=True)


async def load(url: str, key: str, kind: str, clients: int, requests: int, model: str) -> dict:
    """``requests`` calls spread over ``clients`` concurrent connections; rps and latency percentiles."""
    latencies: list[float] = []
    counter = iter(range(requests))

    async def client(http: httpx.AsyncClient) -> None:
        for i in counter:
            if kind == "search":
                body = {
                    "query": QUERIES[i % len(QUERIES)],
                    "collections": ["bench"],
                    "k": 8,
                    "mode": "hybrid",
                }
                path = "/v1/search"
            else:
                body = {"model": model, "messages": CHAT, "max_tokens": CHAT_TOKENS}
                path = "/v1/chat/completions"
            started = time.perf_counter()
            response = await http.post(path, json=body)
            latencies.append(time.perf_counter() - started)
            response.raise_for_status()

    limits = httpx.Limits(max_connections=clients)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600, limits=limits) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
    return {
        "rps": requests / wall,
        "p50": statistics.median(latencies) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
    }


def direct(service: EmberService, kind: str, requests: int) -> dict:
    latencies = []
    for i in range(requests):
        started = time.perf_counter()
        if kind == "search":
            service.search(QUERIES[i % len(QUERIES)], ["bench"], 8, "hybrid")
        else:
            service.chat(CHAT, max_tokens=CHAT_TOKENS)
        latencies.append(time.perf_counter() - started)
    return {
        "rps": requests / sum(latencies),
        "p50": statistics.median(latencies) * 1000,
        "p95": percentile(latencies, 0.95) * 1000,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--model", required=True, type=Path, help="an Ember checkpoint dir (smollm2-135m-instruct)"
    )
    parser.add_argument("--topics", type=int, default=40, help="pydoc topics to ingest")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ember-bench-api"))
    parser.add_argument("--port", type=int, default=8765)
    args = parser.parse_args()
    if not (args.model / "config.json").is_file():
        raise SystemExit(f"--model {args.model} is not an Ember checkpoint directory (no config.json)")

    console.print(f"ingesting {args.topics} pydoc topics…")
    service, report = prepare_home(
        args.workdir, args.topics, llm_model=str(args.model), api_concurrency_per_key=64
    )
    _, key = service.create_key("bench", ["read"])
    env = server_env(service)
    server = start_server(env, args.port)
    url = f"http://127.0.0.1:{args.port}"
    model = args.model.name
    rows = []
    try:
        asyncio.run(load(url, key, "search", 4, 8, model))  # warm up: embedder, model, caches
        asyncio.run(load(url, key, "chat", 1, 2, model))
        for kind in ("search", "chat"):
            results = []
            for clients in LEVELS:
                requests = max(48, 3 * clients) if kind == "search" else max(8, clients)
                console.print(f"{kind}: {clients} clients, {requests} requests…")
                results.append((clients, asyncio.run(load(url, key, kind, clients, requests, model))))
            # The anchor runs while the server idles, after warm-up calls (a fresh process's first calls
            # are several times slower), on a worker thread as the server's engine does (torch's
            # thread settings differ between the main thread and others).
            with ThreadPoolExecutor(1) as worker:
                worker.submit(direct, service, kind, 4).result()
                anchor = worker.submit(direct, service, kind, 16 if kind == "search" else 8).result()
            rows.append((kind, "direct facade (anchor)", anchor, 1.0))
            for clients, result in results:
                rows.append((kind, f"HTTP, {clients} clients", result, result["rps"] / anchor["rps"]))
    finally:
        server.terminate()
        server.wait(30)

    table = Table(
        title=f"ember API on loopback · {report.chunks_written} chunks · chat max_tokens={CHAT_TOKENS}"
    )
    for column in ("route", "setup", "req/s", "p50 ms", "p95 ms", "req/s vs anchor"):
        table.add_column(column, justify="right" if column != "setup" else "left")
    for kind, setup, result, ratio in rows:
        route = "/v1/search (hybrid)" if kind == "search" else "/v1/chat/completions"
        table.add_row(
            route,
            setup,
            f"{result['rps']:.1f}",
            f"{result['p50']:.0f}",
            f"{result['p95']:.0f}",
            f"{ratio:.2f}×",
        )
    Console().print(table)


if __name__ == "__main__":
    main()
