"""Continuous batching over the paged KV cache: batched outputs equal one-at-a-time outputs, prefix-cache
hits and preemption change nothing, and cancelling one request never disturbs another.

Most tests use a tiny random-weight model (fp32, CPU) with SmolLM2's real tokenizer; the last one runs
the real SmolLM2-Instruct weights through the LLM scheduler."""

import random
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from ember.llm.inference.batch_engine import BatchEngine
from ember.llm.inference.batch_step import Work, forward_step
from ember.llm.inference.chat import ChatModel
from ember.llm.inference.config import ModelConfig
from ember.llm.inference.engine import Engine
from ember.llm.inference.paged_kv import BlockTable
from ember.llm.inference.sampling import SamplingParams
from ember.llm.inference.scheduler import LLMScheduler


@pytest.fixture(scope="module")
def tiny_engine(smollm2_tokenizer) -> Engine:
    from ember.llm.inference.model import Transformer

    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=smollm2_tokenizer.vocab_size, d_model=64, n_layers=2, n_heads=4, n_kv_heads=2,
        ffn_dim=128, max_seq_len=512,
    )  # fmt: skip
    return Engine(Transformer(config).eval(), smollm2_tokenizer)


@pytest.fixture
def batch_engines(tiny_engine):
    """Makes BatchEngines; after the test, every one has given back every block."""
    made = []

    def make(**options) -> BatchEngine:
        made.append(BatchEngine(tiny_engine, **options))
        return made[-1]

    yield make
    for engine in made:
        assert not engine.has_work()
        assert engine.pool.used == 0 and sum(engine.pool.refcounts) == 0


def random_prompts(count: int, seed: int = 0) -> list[list[int]]:
    rng = random.Random(seed)
    return [[rng.randrange(1, 4000) for _ in range(rng.randrange(2, 120))] for _ in range(count)]


def mixed_params(engine: Engine, prompt: list[int], index: int) -> SamplingParams:
    """Per-request sampling: greedy or seeded sampling, logprobs, stop tokens, lengths all differ."""
    if index % 4 == 3:
        return SamplingParams(max_tokens=12, temperature=0.9, top_k=40, seed=index, stop_token_ids=set())
    if index % 7 == 1:  # a per-request logits processor, applied to this row only
        return SamplingParams(max_tokens=14, no_repeat_ngram_size=2, stop_token_ids=set())
    stop = set()
    if index % 3 == 0:  # stop at the token greedy decoding gives third
        stop = {engine.generate([prompt], SamplingParams(max_tokens=3, stop_token_ids=set()))[0].token_ids[2]}
    return SamplingParams(max_tokens=6 + index % 11, logprobs=index % 2 == 0, stop_token_ids=stop)


def run(engine: BatchEngine, prompts, params, join_every: int = 1, cancel_at=None) -> dict[int, dict]:
    """Adds prompt i at step i * join_every; returns each sequence's tokens, logprobs, text, finish."""
    outputs, sequences, step = {}, [], 0
    while len(sequences) < len(prompts) or engine.has_work():
        if len(sequences) < len(prompts) and step % join_every == 0:
            sequences.append(engine.add(prompts[len(sequences)], params[len(sequences)]))
        if cancel_at is not None:
            cancel_at(step, sequences)
        for sequence, chunk in engine.step():
            out = outputs.setdefault(
                sequences.index(sequence), {"ids": [], "lp": [], "text": "", "finish": None}
            )
            out["ids"] += chunk.token_ids
            out["lp"] += chunk.logprobs or []
            out["text"] += chunk.text
            out["finish"] = chunk.finish_reason or out["finish"]
        step += 1
    return outputs


def assert_same_as_alone(tiny_engine, prompts, params, outputs, skip=()) -> None:
    for i, (prompt, p) in enumerate(zip(prompts, params, strict=True)):
        if i in skip:
            continue
        alone = tiny_engine.generate([prompt], p)[0]
        got = outputs[i]
        assert got["ids"] == alone.token_ids, f"request {i}"
        assert (got["text"], got["finish"]) == (alone.text, alone.finish_reason), f"request {i}"
        if p.logprobs:
            assert got["lp"] == pytest.approx(alone.logprobs, abs=1e-4)


def test_32_requests_joining_at_different_steps_equal_their_one_at_a_time_outputs(tiny_engine, batch_engines):
    prompts = random_prompts(32)
    params = [mixed_params(tiny_engine, prompt, i) for i, prompt in enumerate(prompts)]
    # A budget of 48 tokens a step: the longer prompts prefill in chunks between other requests' decodes.
    engine = batch_engines(max_running=32, num_blocks=512, block_size=8, token_budget=48)
    outputs = run(engine, prompts, params, join_every=2)
    assert {o["finish"] for o in outputs.values()} == {"stop", "length"}
    assert_same_as_alone(tiny_engine, prompts, params, outputs)


def test_prefix_cache_hits_give_the_logits_of_a_cold_run(tiny_engine, batch_engines):
    engine = batch_engines(num_blocks=32, block_size=8)
    rng = random.Random(3)
    ids = [rng.randrange(1, 4000) for _ in range(40)] + [7] * 13
    cold = BlockTable()
    assert engine.pool.allocate_prompt(cold, ids) == 0
    cold_logits = forward_step(engine.model, engine.cache, [Work(ids, cold, 0, len(ids))])
    engine.pool.register_full_blocks(cold, ids, len(ids))
    warm = BlockTable()
    cached = engine.pool.allocate_prompt(warm, ids)
    assert cached == 48 and warm.blocks[:6] == cold.blocks[:6]  # six full blocks shared
    warm_logits = forward_step(engine.model, engine.cache, [Work(ids, warm, cached, len(ids))])
    torch.testing.assert_close(warm_logits, cold_logits, rtol=0, atol=1e-5)
    assert warm_logits.argmax() == cold_logits.argmax()
    engine.pool.free(cold)
    engine.pool.free(warm)


def test_requests_sharing_a_system_prompt_hit_the_cache_and_answer_as_alone(tiny_engine, batch_engines):
    system = random_prompts(1, seed=5)[0][:64] + [11] * 40  # 104 tokens: 13 blocks of 8
    prompts = [system + tail for tail in random_prompts(6, seed=6)]
    params = [SamplingParams(max_tokens=8, stop_token_ids=set(), logprobs=True) for _ in prompts]
    engine = batch_engines(max_running=6, num_blocks=256, block_size=8, token_budget=512)
    outputs = run(engine, prompts, params, join_every=3)
    assert engine.pool.prefix_hits >= 5 * 13  # every request after the first reuses the system prompt
    assert_same_as_alone(tiny_engine, prompts, params, outputs)


def test_preemption_by_recompute_gives_the_same_output(tiny_engine, batch_engines):
    prompts = random_prompts(8, seed=1)
    params = [SamplingParams(max_tokens=24, stop_token_ids=set(), logprobs=True) for _ in prompts]
    params[3] = SamplingParams(max_tokens=24, temperature=1.0, seed=7, stop_token_ids=set())
    # 40 blocks of 4 tokens cannot hold eight sequences of up to 143 tokens: some must make way.
    engine = batch_engines(max_running=8, num_blocks=40, block_size=4, token_budget=64)
    outputs = run(engine, prompts, params)
    assert engine.preemptions > 0
    assert_same_as_alone(tiny_engine, prompts, params, outputs)


def test_cancelling_a_running_and_a_waiting_request_leaves_the_others_untouched(tiny_engine, batch_engines):
    prompts = random_prompts(6, seed=2)
    params = [SamplingParams(max_tokens=16, stop_token_ids=set()) for _ in prompts]
    engine = batch_engines(max_running=4, num_blocks=128, block_size=8, token_budget=64)

    def cancel(step, sequences):
        if step == 5:
            sequences[1].cancelled.set()  # running, mid-generation
            sequences[5].cancelled.set()  # still waiting for a free place in the batch

    outputs = run(engine, prompts, params, cancel_at=cancel)
    assert 5 not in outputs and len(outputs[1]["ids"]) < 16 and outputs[1]["finish"] is None
    assert_same_as_alone(tiny_engine, prompts, params, outputs, skip={1, 5})


def test_a_request_that_can_never_fit_the_cache_is_refused_by_name(batch_engines):
    engine = batch_engines(num_blocks=4, block_size=4)
    with pytest.raises(ValueError, match="needs 6 KV blocks; the pool has 4"):
        engine.add(list(range(1, 20)), SamplingParams(max_tokens=4))


@pytest.mark.slow  # ~30 s on an idle 2-core box; minutes when it is shared
def test_real_smollm2_scheduler_batches_requests_and_a_cancel_disturbs_no_other(smollm2, smollm2_tokenizer):
    model = ChatModel(Engine(smollm2, smollm2_tokenizer))
    questions = [
        "What is the capital of France?",
        "Name a primary color.",
        "How many legs does a spider have?",
        "Write one word about the sea.",
    ]
    messages = [[{"role": "user", "content": q}] for q in questions]
    alone = [model.chat(m, max_tokens=10) for m in messages]
    scheduler = LLMScheduler(model, max_running=4, kv_blocks=64, token_budget=32)
    try:
        endless = scheduler.stream(messages[0], max_tokens=400, stop_token_ids=set())
        next(endless)
        started = threading.Barrier(len(messages) + 1)

        def ask(m):
            started.wait()
            return scheduler.chat(m, max_tokens=10)

        with ThreadPoolExecutor(len(messages)) as pool:
            futures = [pool.submit(ask, m) for m in messages]
            started.wait()
            endless.close()  # cancelled while the others run beside it
            together = [f.result(timeout=300) for f in futures]
        assert together == alone
        assert scheduler.cancelled == 1 and scheduler.completed == len(messages)
    finally:
        scheduler.close()
    assert (scheduler.waiting, scheduler.running, scheduler.kv_blocks_used) == (0, 0, 0)
