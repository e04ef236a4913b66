"""Decode throughput of one batching step against batch size, in process (no HTTP, no prefill in the
timing): N sequences of a ~1,000-token RAG prompt (one shared prefix, prefilled once and shared through
the prefix cache, plus a distinct last block each) decode 16 steps together.

    python bench/serve/decode_batch.py --model /tmp/ember-bench-serve/smollm2-135m-instruct-int8

Goal (issue 15): aggregate decode tok/s at 16 sequences ≥ 5x one sequence's.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from rich.console import Console

from ember.llm.inference.batch_engine import BatchEngine
from ember.llm.inference.engine import Engine
from ember.llm.inference.sampling import SamplingParams

console = Console(stderr=True)
STEPS = 16


def decode_rate(engine: Engine, prompt: list[int], batch: int) -> float:
    """Completion tokens per second over STEPS decode steps of ``batch`` sequences."""
    runner = BatchEngine(
        engine, max_running=batch, num_blocks=64 + 4 * batch + len(prompt) // 16, token_budget=2048
    )
    params = SamplingParams(max_tokens=STEPS + 1, stop_token_ids=set())
    # One request prefills the shared prefix first, so every sequence finds it cached. Added together
    # on a cold cache, they would each prefill the prefix in the same step, share nothing, and overflow
    # this pool (sized for sharing): the 2- and 4-sequence rows then timed 2 sequences while the rest waited.
    runner.add(prompt, SamplingParams(max_tokens=1, stop_token_ids=set()))
    while runner.has_work():
        runner.step()
    for row in range(batch):
        runner.add(prompt + [1000 + row] * 16, params)  # a distinct last block each
    while runner.waiting or any(len(s.token_ids) - s.computed != 1 for s in runner.running):
        runner.step()  # prefill of each one's own last blocks, up to its first token
    started = time.perf_counter()
    tokens = 0
    while runner.has_work():
        tokens += sum(len(chunk.token_ids) for _, chunk in runner.step())
    return tokens / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", required=True, type=Path, help="an Ember checkpoint directory")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 4, 16, 32])
    args = parser.parse_args()
    engine = Engine.load(args.model)
    prompt = [(i * 7919) % 40000 + 100 for i in range(984)]
    rates = {}
    for batch in args.batches:
        rates[batch] = decode_rate(engine, prompt, batch)
        console.print(
            f"batch {batch}: {rates[batch]:.1f} tok/s ({rates[batch] / rates[args.batches[0]]:.2f}x)"
        )


if __name__ == "__main__":
    main()
