"""Serving under concurrency (issue 15): continuous batching against one-at-a-time, through real HTTP.

RAG-shaped chat requests (a shared ~600-token system prompt of instructions and passages, then ~400
tokens of request-specific passages and a question; 64-token answers, greedy) from 1, 4, 16 and 32
concurrent streaming clients against a real `uvicorn` server (`ember serve`'s app) running
SmolLM2-135M-Instruct int8. Each client asks ``--rounds`` questions one after another (a closed loop);
the clients' first questions start spread over one idle request's time (``--ramp``), as independent
users arrive, not all in the same millisecond. Reported per level: end-to-end tok/s (completion tokens
over the wall time, prefill included), decode tok/s (clients x the median stream's tokens per second
after its first token: the aggregate decode throughput the issue's goal is about), TTFT p50/p95 of the
questions after each client's first (steady state; the first wave's p95 beside it), inter-token latency
p50/p95 (gaps between streamed chunks), and the server's prefix-cache hit rate.
In the same run: the same server with EMBER_LLM_MAX_RUNNING=1 (one at a time), a cold-vs-cached
system prompt TTFT at idle, and HF transformers `generate` batched statically (in process, fp32).

    python bench/serve/run.py --gguf ~/.cache/ember/test-weights/SmolLM2-135M-Instruct.Q4_1.gguf [--rounds 1]

Goals: 16 clients ≥ 5× the 1-client decode throughput; TTFT p95 at 16 ≤ 4× idle TTFT; a cached system prompt
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
    decoding = arrivals[-1] - arrivals[0]
    return {
        "ttft": arrivals[0] - started,
        "latency": arrivals[-1] - started,
        "gaps": gaps,
        "tokens": tokens,
        "decode_tok_s": (tokens - 1) / decoding if decoding > 0 and tokens > 1 else 0.0,
    }


async def level(
    url: str, key: str, model: str, system: str, users: list[str], clients: int, ramp_s: float = 0.0
) -> dict:
    """``clients`` concurrent clients share the users' questions, each asking its next in turn;
    client i starts ``i * ramp_s / clients`` seconds in."""
    queue = list(users)
    results = []

    async def client(http: httpx.AsyncClient, index: int) -> None:
        await asyncio.sleep(index * ramp_s / clients)
        wave = 0
        while queue:
            results.append(await one_request(http, model, system, queue.pop()) | {"wave": wave})
            wave += 1

    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=1800) as http:
        started = time.perf_counter()
        await asyncio.gather(*(client(http, i) for i in range(clients)))
        wall = time.perf_counter() - started
        metrics = (await http.get("/metrics")).text
    hit_rate = next(
        float(line.split()[1])
        for line in metrics.splitlines()
        if line.startswith("ember_engine_prefix_cache_hit_rate ")
    )
    first_wave = [r["ttft"] for r in results if r["wave"] == 0]
    steady = [r["ttft"] for r in results if r["wave"] > 0] or first_wave  # one round: the first wave only
    gaps = [g for r in results for g in r["gaps"]]
    return {
        "requests": len(results),
        "tok_s": sum(r["tokens"] for r in results) / wall,
        "decode_tok_s": clients * statistics.median(r["decode_tok_s"] for r in results),
        "latency": statistics.mean(r["latency"] for r in results),
        "ttft_p50": percentile(steady, 0.5),
        "ttft_p95": percentile(steady, 0.95),
        "first_wave_ttft_p95": percentile(first_wave, 0.95),
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


PREFIX_PAIRS = 5  # cold/cached TTFT pairs behind the prefix-cache ratio (a median)
WARM_UP_USERS = 2 + 2 * PREFIX_PAIRS  # users[:2] warm the server up, the rest time the prefix cache


def level_users(users: list[str], rounds: int, levels: list[int]) -> dict[int, list[str]]:
    """Disjoint questions per level (every level of either server): no level finds another's whole
    prompt in the cache. The one-at-a-time server asks a level the same questions as the batching one."""
    slices, start = {}, WARM_UP_USERS
    for clients in sorted(set(levels)):
        count = clients * rounds + (2 if clients == 1 else 0)
        slices[clients], start = users[start : start + count], start + count
    if start > len(users):
        raise ValueError(f"the levels need {start} questions; build_requests made {len(users)}")
    return slices


def measure_server(args, home, checkpoint, key, system, users, max_running: int, levels, ramp) -> dict:
    server = serve(args, home, checkpoint, max_running)
    url, model = f"http://127.0.0.1:{args.port}", checkpoint.name
    questions = level_users(users, args.rounds, [*args.levels, *args.serial_levels])
    rows = {}
    try:
        asyncio.run(level(url, key, model, system, users[:2], 1))  # warm-up; caches the system prompt
        if max_running > 1:
            rows["prefix"] = asyncio.run(prefix_ttft(url, key, model, system, users[2:WARM_UP_USERS]))
        for clients in levels:
            asked = questions[clients]
            console.print(f"max_running={max_running}: {clients} clients, {len(asked)} requests…")
            rows[clients] = asyncio.run(level(url, key, model, system, asked, clients, ramp or 0.0))
            if ramp is None and clients == 1:  # the idle request's time spreads the later levels' starts
                ramp = rows["ramp_s"] = rows[1]["latency"]
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
        for i in range(PREFIX_PAIRS):
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
    parser.add_argument("--rounds", type=int, default=2, help="requests per client at every level")
    parser.add_argument(
        "--ramp",
        type=float,
        default=None,
        help="seconds over which the clients' first requests start (default: one idle request's time, "
        "from the 1-client level; 0: all at once)",
    )
    parser.add_argument("--kv-blocks", type=int, default=2600, help="EMBER_LLM_KV_BLOCKS of the server")
    parser.add_argument("--levels", type=int, nargs="+", default=list(LEVELS), help="concurrent clients")
    parser.add_argument("--serial-levels", type=int, nargs="+", default=[1, 16])
    parser.add_argument("--hf-batch", type=int, default=16)
    args = parser.parse_args()

    from ember.llm.inference.checkpoint import load_tokenizer

    console.print("importing and quantizing SmolLM2-135M-Instruct…")
    home, checkpoint, key = prepare(args)
    tokenizer = load_tokenizer(checkpoint)
    needed = sum(c * args.rounds + (2 if c == 1 else 0) for c in set(args.levels + args.serial_levels))
    system, users = build_requests(tokenizer, WARM_UP_USERS + needed)
    sizes = [len(tokenizer.encode(system + u)) for u in users]
    console.print(f"prompts: {min(sizes)}-{max(sizes)} tokens, system prompt {len(tokenizer.encode(system))}")

    batching = measure_server(args, home, checkpoint, key, system, users, 32, args.levels, args.ramp)
    ramp = batching.get("ramp_s", args.ramp)  # the same arrivals for the one-at-a-time server
    serial = measure_server(args, home, checkpoint, key, system, users, 1, args.serial_levels, ramp)
    console.print("HF transformers generate, static batch…")
    hf = hf_static(args.gguf, system, users, args.hf_batch)

    table = Table(title="bench/serve: SmolLM2-135M-Instruct int8, ~1,000-token RAG prompts, 64-token answers")
    for column in (
        "server",
        "clients",
        "requests",
        "tok/s",
        "decode tok/s",
        "TTFT p50",
        "TTFT p95",
        "1st wave p95",
        "ITL p50",
        "ITL p95",
        "hit",
    ):
        table.add_column(column)
    for name, rows in (("batching (32)", batching), ("one at a time", serial)):
        for clients, r in rows.items():
            if clients in ("prefix", "ramp_s"):
                continue
            table.add_row(
                name, str(clients), str(r["requests"]), f"{r['tok_s']:.1f}", f"{r['decode_tok_s']:.1f}",
                f"{r['ttft_p50']:.2f} s", f"{r['ttft_p95']:.2f} s", f"{r['first_wave_ttft_p95']:.2f} s",
                f"{r['itl_p50'] * 1000:.0f} ms", f"{r['itl_p95'] * 1000:.0f} ms", f"{r['hit_rate']:.2f}",
            )  # fmt: skip
    console.print(table)
    results = {"batching": batching, "one_at_a_time": serial, "hf": hf}
    (args.workdir / "results.json").write_text(json.dumps(results, indent=1, default=str))
    base, at16 = batching[1], batching[16]
    prefix = batching["prefix"]
    console.print(
        f"HF generate static batch {hf['batch']} (fp32, in process): {hf['tok_s']:.1f} tok/s, {hf['s']:.1f} s"
    )
    console.print(
        f"16 clients / 1 client decode throughput: {at16['decode_tok_s'] / base['decode_tok_s']:.2f}x "
        f"(goal ≥ 5x); end to end, prefill included: {at16['tok_s'] / base['tok_s']:.2f}x"
    )
    console.print(
        f"TTFT p95 at 16 / idle TTFT p50: {at16['ttft_p95'] / base['ttft_p50']:.2f}x (goal ≤ 4x); "
        f"first wave {at16['first_wave_ttft_p95'] / base['ttft_p50']:.2f}x"
    )
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
