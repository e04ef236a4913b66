"""Engine behaviour on the real SmolLM2 weights: batching, stopping, streaming, logprobs."""

import math

import pytest

from ember.llm.inference.engine import Engine
from ember.llm.inference.sampling import SamplingParams

PROMPTS = [
    "Water boils at",
    "A short poem about the moon:\n",
    "In 1969, the first humans to walk on the Moon were",
    "List three primary colors:",
]


def test_batched_generation_equals_one_by_one(smollm2, smollm2_tokenizer):
    engine = Engine(smollm2, smollm2_tokenizer)
    params = SamplingParams(max_tokens=20, stop_token_ids=set())
    batched = engine.generate(PROMPTS, params)
    assert len({len(smollm2_tokenizer.encode(p)) for p in PROMPTS}) == len(PROMPTS)
    for prompt, together in zip(PROMPTS, batched, strict=True):
        alone = engine.generate([prompt], params)[0]
        assert together.token_ids == alone.token_ids
        assert together.text == alone.text


def test_stop_string_truncates_and_stream_matches_generate(smollm2, smollm2_tokenizer):
    engine = Engine(smollm2, smollm2_tokenizer)
    full = engine.generate([PROMPTS[1]], SamplingParams(max_tokens=30, stop_token_ids=set()))[0].text
    stop = full[10:14]
    params = SamplingParams(max_tokens=30, stop=[stop], stop_token_ids=set())
    result = engine.generate([PROMPTS[1]], params)[0]
    assert result.finish_reason == "stop"
    assert result.text == full[: full.index(stop)]
    streamed = list(engine.stream(PROMPTS[1], params))
    assert "".join(c.text for c in streamed) == result.text
    assert streamed[-1].finish_reason == "stop"


def test_max_tokens_and_logprobs(smollm2, smollm2_tokenizer):
    engine = Engine(smollm2, smollm2_tokenizer)
    result = engine.generate([PROMPTS[0]], SamplingParams(max_tokens=5, stop_token_ids=set(), logprobs=True))[
        0
    ]
    assert result.finish_reason == "length"
    assert len(result.token_ids) == len(result.logprobs) == 5
    # Greedy picks the most likely token, whose probability is never tiny for this model.
    assert all(-5 < lp <= 0 for lp in result.logprobs)
    assert sum(math.exp(lp) for lp in result.logprobs) > 0.5


def test_seeded_sampling_is_reproducible_and_varies_with_seed(smollm2, smollm2_tokenizer):
    engine = Engine(smollm2, smollm2_tokenizer)

    def run(seed):
        params = SamplingParams(max_tokens=12, temperature=1.0, top_p=0.95, top_k=50, seed=seed)
        return engine.generate([PROMPTS[1]], params)[0].token_ids

    assert run(1) == run(1)
    assert len({tuple(run(s)) for s in range(4)}) > 1


def test_stop_token_ends_generation(smollm2, smollm2_tokenizer):
    engine = Engine(smollm2, smollm2_tokenizer)
    first = engine.generate([PROMPTS[0]], SamplingParams(max_tokens=3, stop_token_ids=set()))[0]
    stopped = engine.generate(
        [PROMPTS[0]], SamplingParams(max_tokens=10, stop_token_ids={first.token_ids[1]})
    )[0]
    assert stopped.finish_reason == "stop"
    assert stopped.token_ids == first.token_ids[:2]


def test_static_decode_reusing_its_cache_matches_dynamic_decode(smollm2, smollm2_tokenizer):
    """The CUDA-graph-shaped path (full cache, reused across calls), exercised on CPU."""
    params = SamplingParams(max_tokens=8, stop_token_ids=set())
    dynamic = Engine(smollm2, smollm2_tokenizer).generate(PROMPTS[2:], params)
    static = Engine(smollm2, smollm2_tokenizer, static_decode=True)
    static.generate(PROMPTS[:2], SamplingParams(max_tokens=30, stop_token_ids=set()))  # leave stale slots
    again = static.generate(PROMPTS[2:], params)
    assert [g.token_ids for g in again] == [g.token_ids for g in dynamic]


def test_native_decode_attention_gives_the_sdpa_tokens_and_logprobs(smollm2, smollm2_tokenizer):
    engine = Engine(smollm2, smollm2_tokenizer)
    if not smollm2.layers[0].attn.native_decode:
        pytest.skip("Ember's CPU kernels are not available here (AVX512-VNNI and a compiler)")
    params = SamplingParams(max_tokens=24, stop_token_ids=set(), logprobs=True)
    native = engine.generate([PROMPTS[2]], params)[0]
    smollm2.use_native_decode_attention(False)
    try:
        reference = engine.generate([PROMPTS[2]], params)[0]
    finally:
        smollm2.use_native_decode_attention(True)
    assert native.token_ids == reference.token_ids
    assert max(abs(a - b) for a, b in zip(native.logprobs, reference.logprobs, strict=True)) < 1e-4
