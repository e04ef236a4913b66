"""Decode as one native call per block (one sequence, or a batching step): the op-by-op results."""

import random
from pathlib import Path

import pytest
import torch

from ember.llm.inference.batch_engine import BatchEngine
from ember.llm.inference.config import ModelConfig
from ember.llm.inference.engine import Engine
from ember.llm.inference.evaluate import bits_per_byte
from ember.llm.inference.fused_decode import FusedBlock, use_fused_decode
from ember.llm.inference.kv_cache import KVCache
from ember.llm.inference.model import Transformer
from ember.llm.inference.quantize import prepare_quantized, quantize_model
from ember.llm.inference.sampling import SamplingParams
from ember.llm.kernels import cpu_kernels_available

pytestmark = pytest.mark.skipif(
    not cpu_kernels_available(), reason="Ember's CPU kernels need AVX512-VNNI and a C++ compiler"
)


def tiny_model(mode: str, vocab_size: int = 256) -> Transformer:
    """Grouped-query attention (4 query heads on 2 kv heads) with a rotary scaling rule, quantized."""
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=vocab_size, d_model=128, n_layers=3, n_heads=4, n_kv_heads=2, ffn_dim=320, max_seq_len=96,
        rope_scaling={"type": "linear", "factor": 2.0},
    )  # fmt: skip
    model = Transformer(config).eval()
    for block in model.layers:  # norms away from 1 so a wrong norm weight shows
        block.attn_norm.weight.data.uniform_(0.5, 1.5)
        block.ffn_norm.weight.data.uniform_(0.5, 1.5)
    quantize_model(model, mode)
    prepare_quantized(model, torch.float32)
    model.use_native_decode_attention(True)
    return model


def decode(
    model: Transformer, ids: list[int], prompt_len: int, cache_dtype: torch.dtype = torch.float32
) -> tuple[torch.Tensor, KVCache]:
    """Logits of each decode step over ``ids`` after a prefill of the first ``prompt_len``, and the cache."""
    cache = KVCache(model.config, 1, len(ids), cache_dtype)
    steps = []
    with torch.inference_mode():
        model(torch.tensor([ids[:prompt_len]]), cache=cache, kv_len=prompt_len)
        for pos in range(prompt_len, len(ids)):
            token, at = torch.tensor([[ids[pos]]]), torch.tensor([[pos]])
            steps.append(model(token, at, cache, kv_len=pos + 1, sees_whole_cache=True)[:, -1])
    return torch.cat(steps), cache


@pytest.mark.parametrize("cache_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("mode", ["int8", "int4"])
def test_a_fused_step_gives_the_op_by_op_logits_and_cache(mode, cache_dtype):
    model = tiny_model(mode)
    ids = torch.randint(0, 256, (40,)).tolist()
    reference, reference_cache = decode(model, ids, 7, cache_dtype)
    assert use_fused_decode(model) == 3
    fused, fused_cache = decode(model, ids, 7, cache_dtype)
    assert (fused - reference).abs().max() < 1e-3 * reference.abs().max()
    caches = zip(fused_cache.k + fused_cache.v, reference_cache.k + reference_cache.v, strict=True)
    # Keys a hair apart in float32 may round to neighbouring bfloat16 values: one unit in the last place.
    tolerance = {"atol": 1e-5} if cache_dtype == torch.float32 else {"rtol": 2**-7, "atol": 1e-5}
    for ours, theirs in caches:
        assert ours.dtype == cache_dtype
        assert torch.allclose(ours.float(), theirs.float(), **tolerance)


def test_fused_models_decode_from_a_bfloat16_cache_and_float_models_from_their_own(smollm2_tokenizer):
    model = tiny_model("int8", vocab_size=smollm2_tokenizer.vocab_size)
    engine = Engine(model, smollm2_tokenizer)
    assert engine.kv_dtype == torch.bfloat16
    assert BatchEngine(engine, num_blocks=8).cache.k[0].dtype == torch.bfloat16
    float_model = Transformer(model.config).eval()
    assert Engine(float_model, smollm2_tokenizer).kv_dtype == torch.float32
    # The op-by-op path reads a bfloat16 cache too: prefill (SDPA) and a batch of rows at their own lengths.
    use_fused_decode(model, enabled=False)
    params = SamplingParams(max_tokens=6, stop_token_ids=set())
    alone = [engine.generate([p], params)[0].token_ids for p in ([5, 6, 7], [9, 10, 11, 12, 13])]
    together = [g.token_ids for g in engine.generate([[5, 6, 7], [9, 10, 11, 12, 13]], params)]
    assert together == alone


def test_continuous_batching_decodes_fused_as_each_sequence_decodes_alone(smollm2_tokenizer, monkeypatch):
    model = tiny_model("int4", vocab_size=smollm2_tokenizer.vocab_size)
    engine = Engine(model, smollm2_tokenizer)
    fused_steps = []
    paged = FusedBlock.paged
    monkeypatch.setattr(
        FusedBlock, "paged", lambda self, x, *rest: fused_steps.append(x.shape[1]) or paged(self, x, *rest)
    )
    rng = random.Random(1)
    prompts = [[rng.randrange(1, 4000) for _ in range(rng.randrange(2, 70))] for _ in range(10)]
    params = SamplingParams(max_tokens=12, logprobs=True, stop_token_ids=set())
    batch = BatchEngine(engine, max_running=10, num_blocks=256, block_size=8, token_budget=64)
    sequences = [batch.add(prompt, params) for prompt in prompts]
    tokens, logprobs = {id(s): [] for s in sequences}, {id(s): [] for s in sequences}
    while batch.has_work():
        for sequence, chunk in batch.step():
            tokens[id(sequence)] += chunk.token_ids
            logprobs[id(sequence)] += chunk.logprobs
    assert max(fused_steps) == 10  # steps where every sequence decodes went through paged_decode_block
    assert batch.pool.used == 0
    for prompt, sequence in zip(prompts, sequences, strict=True):
        alone = engine.generate([prompt], params)[0]  # decode_block over a contiguous cache
        assert tokens[id(sequence)] == alone.token_ids
        assert logprobs[id(sequence)] == pytest.approx(alone.logprobs, abs=1e-4)


def test_stacked_weights_are_held_once_and_the_layers_still_agree():
    model = tiny_model("int8")
    x = torch.randn(3, 128)
    before = [linear(x) for linear in (model.layers[0].attn.wk, model.layers[0].ffn.w_up)]
    use_fused_decode(model)
    block = model.layers[0]
    stack = block.fused_decode.qkv[0].untyped_storage().data_ptr()
    assert block.attn.wq.vnni_weight.untyped_storage().data_ptr() == stack
    assert block.attn.wv.vnni_weight.untyped_storage().data_ptr() == stack
    after = [linear(x) for linear in (block.attn.wk, block.ffn.w_up)]  # each layer reads its own slice
    for a, b in zip(before, after, strict=True):
        assert torch.equal(a, b)


def test_a_float_model_and_a_disabled_switch_keep_the_op_by_op_step():
    model = tiny_model("int8")
    assert use_fused_decode(model, enabled=False) == 0
    float_model = Transformer(model.config).eval()
    float_model.use_native_decode_attention(True)
    assert use_fused_decode(float_model) == 0  # no quantized kernel weights to fuse


def test_a_position_outside_the_cache_and_a_wrong_norm_width_are_refused():
    model = tiny_model("int8")
    use_fused_decode(model)
    block, cache = model.layers[0].fused_decode, KVCache(model.config, 1, 8)
    cos = sin = torch.zeros(1, 1, 1, model.config.head_dim)
    with pytest.raises(RuntimeError, match="position 8 is outside the cache"):
        block(torch.randn(1, 1, 128), cos, sin, torch.tensor([[8]]), cache, 0)
    block.ffn_norm = torch.ones(64)  # a norm weight of the wrong width
    with pytest.raises(RuntimeError, match="norm weights must be float32 vectors of the model width 128"):
        block(torch.randn(1, 1, 128), cos, sin, torch.tensor([[3]]), cache, 0)


def test_smollm2_int8_fused_decode_agrees_with_the_op_by_op_step(
    smollm2, smollm2_checkpoint, smollm2_tokenizer
):
    from ember.llm.inference.checkpoint import load_model

    model = load_model(smollm2_checkpoint)
    quantize_model(model, "int8")
    prepare_quantized(model, torch.float32)
    Engine(model, smollm2_tokenizer)  # turns fused decode on where the kernels are
    assert all(block.fused_decode is not None for block in model.layers)
    fp32 = Engine(smollm2, smollm2_tokenizer)
    params = SamplingParams(max_tokens=32, stop_token_ids=set())
    agree = total = 0
    for text in ("The capital of France is", "def add(a, b):\n", "Photosynthesis is", "Once upon a time"):
        prompt = smollm2_tokenizer.encode(text)
        ids = prompt + fp32.generate([prompt], params)[0].token_ids  # teacher-forced, one continuation
        use_fused_decode(model)
        fused, _ = decode(model, ids, len(prompt))
        use_fused_decode(model, enabled=False)
        reference, _ = decode(model, ids, len(prompt))
        # Activations are quantized to int8, so float rounding noise alone moves logits a little: a 1e-6
        # relative nudge of the norm weights gives the op-by-op step a mean KL of ~0.005 to itself.
        log_p, log_q = fused.log_softmax(-1), reference.log_softmax(-1)
        assert (log_p.exp() * (log_p - log_q)).sum(-1).mean() < 0.02
        agree += (fused.argmax(-1) == reference.argmax(-1)).sum().item()
        total += len(ids) - len(prompt)
    assert agree / total >= 0.93  # 97% measured; int8 against fp32 itself agrees on 96%
    text = (Path(__file__).parent / "data" / "heldout.txt").read_text()[:700]
    reference_bpb = bits_per_byte(model, smollm2_tokenizer, text, step_by_step=True)
    use_fused_decode(model)
    fused_bpb = bits_per_byte(model, smollm2_tokenizer, text, step_by_step=True)
    assert abs(fused_bpb - reference_bpb) / reference_bpb < 0.01  # int8 against fp32 is held to 1% too
