"""Parity with HF transformers on SmolLM2-135M-Instruct (same GGUF, fp32 weights)."""

import pytest
import torch

from ember.llm.inference.engine import Engine
from ember.llm.inference.sampling import SamplingParams

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    ",
    "Once upon a time, in a small village by the sea, there lived an old fisherman who",
    "Les avions volent parce que",
]


def test_logits_match_hf_within_1e_3(smollm2, smollm2_tokenizer, hf_reference):
    for prompt in PROMPTS:
        ids = torch.tensor([smollm2_tokenizer.encode(prompt)])
        with torch.inference_mode():
            ours = smollm2(ids)
            theirs = hf_reference(ids).logits
        assert ours.shape == theirs.shape
        assert (ours - theirs).abs().max().item() <= 1e-3, prompt


@pytest.mark.slow  # about a minute on 2 cores, most of it in HF generate
def test_greedy_64_tokens_match_hf(smollm2, smollm2_tokenizer, hf_reference):
    engine = Engine(smollm2, smollm2_tokenizer)
    params = SamplingParams(max_tokens=64, stop_token_ids=set())
    for prompt in PROMPTS[:3]:
        ids = smollm2_tokenizer.encode(prompt)
        ours = engine.generate([ids], params)[0].token_ids
        with torch.inference_mode():
            out = hf_reference.generate(
                torch.tensor([ids]), max_new_tokens=64, do_sample=False, eos_token_id=None, pad_token_id=0
            )
        assert ours == out[0, len(ids) :].tolist(), prompt
        assert len(ours) == 64


@pytest.mark.slow  # torch.compile of the decode step takes minutes on 2 CPU cores
def test_compiled_static_decode_step_matches_eager(smollm2, smollm2_tokenizer):
    params = SamplingParams(max_tokens=8, stop_token_ids=set())
    eager = Engine(smollm2, smollm2_tokenizer).generate(PROMPTS[:2], params)
    compiled = Engine(smollm2, smollm2_tokenizer, compile_decode=True, static_decode=True)
    assert [g.token_ids for g in compiled.generate(PROMPTS[:2], params)] == [g.token_ids for g in eager]
