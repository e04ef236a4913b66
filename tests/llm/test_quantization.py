"""int8 / int4 weight-only quantization of SmolLM2: agreement, bits per byte, save and load."""

from pathlib import Path

import pytest
import torch
from torch import nn

from ember.llm.inference.checkpoint import load_model, quantize_checkpoint
from ember.llm.inference.engine import Engine
from ember.llm.inference.evaluate import bits_per_byte
from ember.llm.inference.quantize import Int4Linear, Int8Linear
from ember.llm.inference.sampling import SamplingParams

HELDOUT = (Path(__file__).parent / "data" / "heldout.txt").read_text()
PROMPTS = [
    "The capital of France is",
    "def add(a, b):\n",
    "Photosynthesis is the process by which",
    "My favourite recipe for pancakes",
    "The three laws of motion",
    "Once upon a time",
    "To install Python packages, you",
    "The largest planet in the solar system",
    "A haiku about autumn:\n",
    "Machine learning models learn from",
]


@pytest.fixture(scope="module")
def quantized(smollm2_checkpoint, tmp_path_factory):
    out = tmp_path_factory.mktemp("quantized")
    return {
        mode: load_model(quantize_checkpoint(smollm2_checkpoint, out / mode, mode))
        for mode in ("int8", "int4")
    }


def test_quantized_checkpoints_load_with_quantized_layers(quantized):
    assert isinstance(quantized["int8"].layers[0].ffn.w_up, Int8Linear)
    assert isinstance(quantized["int4"].lm_head, Int4Linear)
    assert quantized["int8"].layers[0].ffn.w_up.kernel in ("vnni", "torch")  # a fused CPU kernel is used
    assert quantized["int4"].layers[0].attn.wq.kernel in ("vnni", "cpu")


def test_kernel_and_prefill_paths_match_fp32_math_on_dequantized_weights(quantized):
    x = torch.randn(40, 576)
    for layer in (quantized["int8"].layers[3].attn.wq, quantized["int4"].layers[3].attn.wq):
        reference = x @ layer.dequantized().T
        tolerance = 0.02 * reference.abs().max()  # bf16 activations inside the layer
        assert (layer(x[:3]) - reference[:3]).abs().max() < tolerance  # fused kernel (decode)
        assert (layer(x) - reference).abs().max() < tolerance  # prefill: kernel or dequantize


def test_int8_greedy_agrees_with_fp32_on_95_percent_of_positions(smollm2, smollm2_tokenizer, quantized):
    continuations = Engine(smollm2, smollm2_tokenizer).generate(
        PROMPTS, SamplingParams(max_tokens=24, stop_token_ids=set())
    )
    agree = total = 0
    for prompt, generation in zip(PROMPTS, continuations, strict=True):
        prompt_ids = smollm2_tokenizer.encode(prompt)
        ids = torch.tensor([prompt_ids + generation.token_ids])
        # Teacher-force fp32's continuation so one early flip does not count as every later one.
        with torch.inference_mode():
            int8_choice = quantized["int8"](ids)[0, len(prompt_ids) - 1 : -1].argmax(-1)
        agree += (int8_choice == torch.tensor(generation.token_ids)).sum().item()
        total += len(generation.token_ids)
    assert agree / total >= 0.95


def test_int4_bits_per_byte_within_5_percent_of_fp32(smollm2, smollm2_tokenizer, quantized):
    fp32 = bits_per_byte(smollm2, smollm2_tokenizer, HELDOUT)
    int4 = bits_per_byte(quantized["int4"], smollm2_tokenizer, HELDOUT)
    int8 = bits_per_byte(quantized["int8"], smollm2_tokenizer, HELDOUT)
    assert 0.3 < fp32 < 1.5  # a sane English bpb for a small instruct model
    assert abs(int8 - fp32) / fp32 < 0.01
    assert abs(int4 - fp32) / fp32 < 0.05


def test_decode_path_keeps_the_bits_per_byte(smollm2, smollm2_tokenizer, quantized):
    """Decode runs other kernels than prefill (on AVX512-VNNI CPUs they quantize activations too)."""
    text = HELDOUT[:700]
    fp32 = bits_per_byte(smollm2, smollm2_tokenizer, text, step_by_step=True)
    assert abs(fp32 - bits_per_byte(smollm2, smollm2_tokenizer, text)) < 1e-3  # the same quantity
    int8 = bits_per_byte(quantized["int8"], smollm2_tokenizer, text, step_by_step=True)
    int4 = bits_per_byte(quantized["int4"], smollm2_tokenizer, text, step_by_step=True)
    assert abs(int8 - fp32) / fp32 < 0.01
    assert abs(int4 - fp32) / fp32 < 0.05


def _decode_logits(engine: Engine, ids: list[int], prompt_len: int) -> torch.Tensor:
    """Logits of each decode step over ``ids`` after a prefill of its first ``prompt_len`` tokens."""
    cache = engine._cache(1, len(ids))
    steps = []
    with torch.inference_mode():
        engine.model(torch.tensor([ids[:prompt_len]]), cache=cache, kv_len=prompt_len)
        for pos in range(prompt_len, len(ids)):
            steps.append(engine._decode(torch.tensor([[ids[pos]]]), torch.tensor([[pos]]), cache, pos + 1))
    return torch.cat(steps)


@pytest.mark.slow
def test_compiled_cpu_decode_matches_the_eager_step(smollm2_tokenizer, quantized):
    eager = Engine(quantized["int8"], smollm2_tokenizer)
    compiled = Engine(quantized["int8"], smollm2_tokenizer, compile_decode=True)
    agree = total = 0
    for prompt in PROMPTS[:4]:  # different lengths: the compiled step must take any cache length
        generation = eager.generate([prompt], SamplingParams(max_tokens=24, stop_token_ids=set()))[0]
        prompt_ids = smollm2_tokenizer.encode(prompt)
        ids = prompt_ids + generation.token_ids
        reference = _decode_logits(eager, ids, len(prompt_ids))
        fast = _decode_logits(compiled, ids, len(prompt_ids))
        # Fusion changes bf16 rounding, so logits are close, not equal.
        assert (fast - reference).abs().max() < 0.05 * reference.abs().max()
        agree += (fast.argmax(-1) == reference.argmax(-1)).sum().item()
        total += len(reference)
    assert agree / total >= 0.95


def test_an_unaligned_int8_weight_is_realigned_before_a_kernel_uses_it():
    # A weight mapped from a safetensors file can start at any byte; torch's AVX512 int8 kernel
    # crashed on one (out_features 279: not a multiple of 16, so Ember's own kernel does not take it).
    layer = Int8Linear.from_linear(nn.Linear(32, 279))
    unaligned = torch.empty(279 * 32 + 1, dtype=torch.int8)[1:].view(279, 32)
    unaligned.copy_(layer.weight)
    layer.weight = unaligned
    layer.prepare(torch.float32)
    if layer.kernel is not None:
        assert layer.weight.data_ptr() % 64 == 0
    x = torch.randn(6, 32)
    torch.testing.assert_close(layer(x).float(), x @ layer.dequantized().T, rtol=0.05, atol=0.05)
