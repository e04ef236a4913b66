"""Serving under concurrency (issue 15): continuous batching against one-at-a-time, through real HTTP.

RAG-shaped chat requests (a shared ~600-token system prompt of instructions and passages, then ~400
tokens of request-specific passages and a question; 64-token answers, greedy) from 1, 4, 16 and 32
concurrent streaming clients against a real `uvicorn` server (`ember serve`'s app) running
SmolLM2-135M-Instruct int8. Reported per level: aggregate completion tok/s, TTFT p50/p95,
inter-token latency p50/p95 (gaps between streamed chunks), and the server's prefix-cache hit rate.
In the same run: the same server with EMBER_LLM_MAX_RUNNING=1 (one at a time), a cold-vs-cached
system prompt TTFT at idle, and HF transformers `generate` batched statically (in process, fp32).

    python bench/serve/run.py --gguf ~/.cache/ember/test-weights/SmolLM2-135M-Instruct.Q4_1.gguf [--rounds 1]

Goals: 16 clients ≥ 5× the 1-client throughput; TTFT p95 at 16 ≤ 4× idle TTFT; a cached system prompt
cuts TTFT ≥ 2×.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx
from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "api"))
from harness import percentile, start_server  # noqa: E402

console = Console(stderr=True)
LEVELS = (1, 4, 16, 32)
ANSWER_TOKENS = 64


def passages() -> list[str]:
    """Paragraphs of Python's own reference (pydoc topics, shipped with Python), as RAG passages."""
    from pydoc_data.topics import topics

    paragraphs = [p.strip() for text in topics.values() for p in text.split("\n\n")]
    return [" ".join(p.split()) for p in paragraphs if 200 < len(p) < 900]


def build_requests(tokenizer, count: int) -> tuple[str, list[str]]:
    """One system prompt of about 600 tokens and ``count`` user turns of about 400 tokens each."""
    pool = passages()

    def take(start: int, tokens: int) -> tuple[str, int]:
        text, index = "", start
        while len(tokenizer.encode(text)) < tokens:
            text += f"[{index}] {pool[index % len(pool)]}\n"
            index += 1
        return text, index

    instructions = "You answer questions about Python using only the numbered passages. Cite them.\n"
    shared, next_index = take(0, 560)
    users = []
    for i in range(count):
        tail, _ = take(next_index + 7 * i, 380)
        users.append(f"{tail}\nQuestion {i}: what do these passages say about names and scopes?")
    return instructions + shared, users


async def one_request(http: httpx.AsyncClient, model: str, system: str, user: str) -> dict:
    body = {
        "model": model,
        "messages": [{"role": "system", "content": system}, {"role": "user", "content": user}],
        "max_tokens": ANSWER_TOKENS,
        "temperature": 0,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    started = time.perf_counter()
    arrivals, tokens = [], 0
    async with http.stream("POST", "/v1/chat/completions", json=body) as response:
        response.raise_for_status()
        async for line in response.aiter_lines():
            if not line.startswith("data: {"):
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise RuntimeError(f"generation failed: {event['error']}")
            if event.get("choices") and event["choices"][0]["delta"].get("content"):
                arrivals.append(time.perf_counter())
            tokens = (event.get("usage") or {}).get("completion_tokens", tokens)
    if not arrivals:
        raise RuntimeError("the answer streamed no text")
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    return {"ttft": arrivals[0] - started, "gaps": gaps, "tokens": tokens}


async def level(url: str, key: str, model: str, system: str, users: list[str], clients: int) -> dict:
    """``clients`` concurrent clients share the users' questions, each asking its next in turn."""
    queue = list(users)
    results = []

    async def client(http: httpx.AsyncClient) -> None:
        while queue:
            results.append(await one_request(http, model, system, queue.pop()))

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=1800) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http) for _ in range(clients)))
        wall = time.perf_counter() - started
        metrics = (await http.get("/metrics")).text
    hit_rate = next(
        float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("ember_engine_prefix_cache_hit_rate ")
    )
    ttfts = [r["ttft"] for r in results]
    gaps = [g for r in results for g in r["gaps"]]
    return {
        "requests": len(results),
        "tok_s": sum(r["tokens"] for r in results) / wall,
        "ttft_p50": percentile(ttfts, 0.5),
        "ttft_p95": percentile(ttfts, 0.95),
        "itl_p50": percentile(gaps, 0.5) if gaps else 0.0,
        "itl_p95": percentile(gaps, 0.95) if gaps else 0.0,
        "hit_rate": hit_rate,
    }


def serve(args, home: Path, checkpoint: Path, max_running: int) -> subprocess.Popen:
    env = os.environ | {
        "EMBER_HOME": str(home),
        "EMBER_DATABASE_URL": f"sqlite:///{home / 'ember.db'}",
        "EMBER_LLM_MODEL": str(checkpoint),
        "EMBER_API_AUTH": "1",
        "EMBER_API_CONCURRENCY_PER_KEY": "64",
        "EMBER_LLM_MAX_RUNNING": str(max_running),
        "EMBER_LLM_KV_BLOCKS": str(args.kv_blocks),
        "EMBER_API_TIMEOUT_S": "3600",  # a shared CPU can take minutes to prefill 16 prompts
    }
    return start_server(env, args.port)


def level_users(users: list[str], rounds: int, levels: list[int]) -> dict[int, list[str]]:
    """Disjoint questions per level (users[:8] warm up and time the prefix cache): no level finds
    another's whole prompt in the cache."""
    slices, start = {}, 8
    for clients in levels:
        count = clients * (rounds if clients < 16 else 1) + (2 if clients == 1 else 0)
        slices[clients], start = users[start : start + count], start + count
    return slices


def measure_server(args, home, checkpoint, key, system, users, max_running: int, levels) -> dict:
    server = serve(args, home, checkpoint, max_running)
    url, model = f"http://127.0.0.1:{args.port}", checkpoint.name
    rows = {}
    try:
        asyncio.run(level(url, key, model, system, users[:2], 1))  # warm-up; caches the system prompt
        if max_running > 1:
            rows["prefix"] = asyncio.run(prefix_ttft(url, key, model, system, users[2:8]))
        for clients in levels:
            asked = level_users(users, args.rounds, args.levels)[clients]
            console.print(f"max_running={max_running}: {clients} clients, {len(asked)} requests…")
            rows[clients] = asyncio.run(level(url, key, model, system, asked, clients))
            console.print(rows[clients])
    finally:
        server.terminate()
        server.wait(60)
    return rows


async def prefix_ttft(url: str, key: str, model: str, system: str, users: list[str]) -> dict:
    """Idle TTFT with the system prompt cached against a never-seen one (a new first line breaks the
    chain of block keys from the first block on)."""
    headers = {"Authorization": f"Bearer {key}"}
    cold, warm = [], []
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=600) as http:
        for i in range(2):
            fresh = f"Session {i} of the bench.\n{system}"
            cold.append((await one_request(http, model, fresh, users[2 * i]))["ttft"])
            warm.append((await one_request(http, model, system, users[2 * i + 1]))["ttft"])
    return {"cold": statistics.median(cold), "warm": statistics.median(warm)}


def hf_static(gguf: Path, system: str, users: list[str], batch: int) -> dict:
    """HF transformers `generate`, one static batch (left-padded), fp32: the whole batch's 64 tokens."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    tokenizer.padding_side = "left"
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()
    texts = [
        tokenizer.apply_chat_template(
            [{"role": "system", "content": system}, {"role": "user", "content": u}],
            tokenize=False,
            add_generation_prompt=True,
        )
        for u in users[:batch]
    ]
    inputs = tokenizer(texts, return_tensors="pt", padding=True)
    with torch.inference_mode():
        started = time.perf_counter()
        out = model.generate(
            **inputs, max_new_tokens=ANSWER_TOKENS, min_new_tokens=ANSWER_TOKENS, do_sample=False
        )
        wall = time.perf_counter() - started
    generated = (out.shape[1] - inputs["input_ids"].shape[1]) * batch
    return {
        "batch": batch,
        "prompt_tokens": inputs["input_ids"].shape[1],
        "tok_s": generated / wall,
        "s": wall,
    }


def prepare(args) -> tuple[Path, Path, str]:
    from ember.llm.imports.importers import import_gguf
    from ember.llm.inference.checkpoint import quantize_checkpoint
    from ember.platform.service import EmberService
    from ember.platform.settings import Settings

    checkpoint, home = args.workdir / "smollm2-135m-instruct-int8", args.workdir / "home"
    if not (checkpoint / "config.json").is_file():
        fp32 = import_gguf(args.gguf, args.workdir / "fp32")
        quantize_checkpoint(fp32, checkpoint, "int8")
    shutil.rmtree(home, ignore_errors=True)
    service = EmberService(Settings(home=home, database_url=f"sqlite:///{home / 'ember.db'}"))
    _, key = service.create_key("bench", ["read"])
    service.close()
    return home, checkpoint, key


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--gguf", required=True, type=Path, help="SmolLM2-135M-Instruct GGUF")
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ember-bench-serve"))
    parser.add_argument("--port", type=int, default=8777)
    parser.add_argument("--rounds", type=int, default=2, help="requests per client below 16 clients")
    parser.add_argument("--kv-blocks", type=int, default=2600, help="EMBER_LLM_KV_BLOCKS of the server")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="concurrent clients")
    parser.add_argument("--serial-levels", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--hf-batch", type=int, default=16)
    args = parser.parse_args()

    from ember.llm.inference.checkpoint import load_tokenizer

    console.print("importing and quantizing SmolLM2-135M-Instruct…")
    home, checkpoint, key = prepare(args)
    tokenizer = load_tokenizer(checkpoint)
    system, users = build_requests(tokenizer, 80)
    sizes = [len(tokenizer.encode(system + u)) for u in users]
    console.print(f"prompts: {min(sizes)}-{max(sizes)} tokens, system prompt {len(tokenizer.encode(system))}")

    batching = measure_server(args, home, checkpoint, key, system, users, 32, args.levels)
    serial = measure_server(args, home, checkpoint, key, system, users, 1, args.serial_levels)
    console.print("HF transformers generate, static batch…")
    hf = hf_static(args.gguf, system, users, args.hf_batch)

    table = Table(title="bench/serve: SmolLM2-135M-Instruct int8, ~1,000-token RAG prompts, 64-token answers")
    for column in (
        "server",
        "clients",
        "requests",
        "tok/s",
        "TTFT p50",
        "TTFT p95",
        "ITL p50",
        "ITL p95",
        "hit",
    ):
        table.add_column(column)
    for name, rows in (("batching (32)", batching), ("one at a time", serial)):
        for clients, r in rows.items():
            if clients == "prefix":
                continue
            table.add_row(
                name, str(clients), str(r["requests"]), f"{r['tok_s']:.1f}", f"{r['ttft_p50']:.2f} s",
                f"{r['ttft_p95']:.2f} s", f"{r['itl_p50'] * 1000:.0f} ms", f"{r['itl_p95'] * 1000:.0f} ms",
                f"{r['hit_rate']:.2f}",
            )  # fmt: skip
    console.print(table)
    results = {"batching": batching, "one_at_a_time": serial, "hf": hf}
    (args.workdir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    base, at16 = batching[1], batching[16]
    prefix = batching["prefix"]
    console.print(
        f"HF generate static batch {hf['batch']} (fp32, in process): {hf['tok_s']:.1f} tok/s, {hf['s']:.1f} s"
    )
    console.print(f"16 clients / 1 client throughput: {at16['tok_s'] / base['tok_s']:.2f}x (goal ≥ 5x)")
    console.print(f"TTFT p95 at 16 / idle TTFT p50: {at16['ttft_p95'] / base['ttft_p50']:.2f}x (goal ≤ 4x)")
    console.print(
        f"system prompt cold {prefix['cold']:.2f} s vs cached {prefix['warm']:.2f} s: "
        f"{prefix['cold'] / prefix['warm']:.2f}x (goal ≥ 2x)"
    )
    for clients, r in serial.items():
        console.print(
            f"batching / one-at-a-time at {clients} clients: {batching[clients]['tok_s'] / r['tok_s']:.2f}x"
        )


if __name__ == "__main__":
    main()
