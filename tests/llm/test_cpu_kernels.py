"""Ember's CPU decode kernels: the int8 x int8 and int4 x int8 linear layers (exact to their own
arithmetic, close to the dequantized math) and one-token attention over a cache prefix or through
block tables into a paged pool (= SDPA)."""

import pytest
import torch
import torch.nn.functional as F

from ember.llm import kernels
from ember.llm.inference.quantize import Int4Linear, Int8Linear, pack_int4_for_vnni, pack_int8_for_vnni

pytestmark = pytest.mark.skipif(not kernels.cpu_has_vnni(), reason="the kernels need AVX512-VNNI")


@pytest.fixture(autouse=True)
def built_kernels():
    """Any test of this file alone finds the ops registered (the first test checks the build itself)."""
    kernels.cpu_kernels_available()


def test_kernels_build_where_the_cpu_has_vnni():
    # On such a CPU a failed build would silently leave decode on torch's slower kernels.
    assert kernels.cpu_kernels_available(), "Ember's CPU kernels failed to build: see the log above"


def quantized_weight(out_features: int, in_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.randn(out_features, in_features) * 0.05
    scales = w.abs().amax(1) / 127
    return torch.round(w / scales[:, None]).to(torch.int8), scales


def activations_as_the_kernels_see_them(x: torch.Tensor) -> torch.Tensor:
    """x rounded to int8 per block of 32 and scaled back, in float64."""
    blocks = x.double().view(x.shape[0], -1, 32)
    block_scales = blocks.abs().amax(-1, keepdim=True) / 127
    codes = torch.round(blocks / torch.where(block_scales > 0, block_scales, 1.0))
    return (codes * block_scales).view_as(x)


def emulated(x: torch.Tensor, weight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The int8 kernel's arithmetic in float64."""
    return (activations_as_the_kernels_see_them(x) @ weight.double().T * scales.double()).float()


@pytest.mark.parametrize("rows", [1, 2, 5, 8, 11, 40])
@pytest.mark.parametrize(("out_features", "in_features"), [(16, 32), (192, 576), (576, 1536)])
def test_kernel_equals_its_emulation_and_is_close_to_the_float_math(rows, out_features, in_features):
    torch.manual_seed(rows * in_features)
    weight, scales = quantized_weight(out_features, in_features)
    x = torch.randn(rows, in_features) * 3
    x[-1, 5] = 80.0  # an outlier feature coarsens only its own block of 32
    out = torch.ops.ember_kernels.int8_linear(x, pack_int8_for_vnni(weight), scales)
    assert out.shape == (rows, out_features)
    torch.testing.assert_close(out, emulated(x, weight, scales), rtol=1e-4, atol=1e-4)
    reference = x @ (weight.float() * scales[:, None]).T
    plain = slice(0, rows - 1)  # the rows without the outlier
    if rows > 1:
        assert (out[plain] - reference[plain]).abs().max() <= 0.02 * reference[plain].abs().max()


@pytest.mark.parametrize("rows", [1, 3, 8, 10, 33])
@pytest.mark.parametrize(
    ("out_features", "in_features", "group_size"), [(16, 32, 32), (192, 576, 32), (48, 256, 64)]
)
def test_int4_kernel_equals_its_emulation(rows, out_features, in_features, group_size):
    torch.manual_seed(rows + in_features)
    layer = Int4Linear.from_linear(torch.nn.Linear(in_features, out_features, bias=False), group_size)
    x = torch.randn(rows, in_features)
    layout = pack_int4_for_vnni(layer.unpacked(), layer.scales, layer.mins, group_size)
    out = torch.ops.ember_kernels.int4_linear(x, *layout)
    # The kernel reads scales and minimums as fp16: emulate that too.
    scales, mins = layer.scales.half().double(), layer.mins.half().double()
    codes = layer.unpacked().double().view(out_features, -1, group_size)
    weight = (codes * scales[..., None] + mins[..., None]).view(out_features, in_features)
    expected = (activations_as_the_kernels_see_them(x) @ weight.T).float()
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-4)


def test_zero_rows_give_zero_output():
    weight, scales = quantized_weight(32, 64)
    out = torch.ops.ember_kernels.int8_linear(torch.zeros(3, 64), pack_int8_for_vnni(weight), scales)
    assert torch.equal(out, torch.zeros(3, 32))


def test_wrong_shapes_are_refused_with_a_reason():
    weight, scales = quantized_weight(32, 64)
    with pytest.raises(RuntimeError, match="K must match"):
        torch.ops.ember_kernels.int8_linear(torch.zeros(1, 96), pack_int8_for_vnni(weight), scales)


def test_layers_use_the_kernels_for_decode_and_torch_when_turned_off(monkeypatch):
    linear = torch.nn.Linear(64, 48, bias=False)
    int8, int4 = Int8Linear.from_linear(linear), Int4Linear.from_linear(linear)
    x = torch.randn(1, 64)
    for layer, tolerance in ((int8, 0.03), (int4, 0.2)):
        layer.prepare(torch.float32)
        assert layer.kernel == "vnni"
        assert (layer(x) - linear(x)).abs().max() < tolerance * linear(x).abs().max()

    monkeypatch.setenv("EMBER_NATIVE_KERNELS", "false")
    kernels.cpu_kernels_available.cache_clear()
    try:
        int8.prepare(torch.float32)
        int4.prepare(torch.float32)
        assert (int8.kernel, int4.kernel) == ("torch", "cpu")
        assert not hasattr(int8, "vnni_weight") and not hasattr(int4, "vnni_layout")
    finally:
        monkeypatch.delenv("EMBER_NATIVE_KERNELS")
        kernels.cpu_kernels_available.cache_clear()


def attention_tolerance(cache_dtype: torch.dtype) -> dict[str, float]:
    """float32 caches: float32 rounding. bfloat16 keys meet the query as two bfloat16 halves in
    vdpbf16ps (where the CPU has it), good to about 2^-16: far inside the cache's own 2^-9 rounding."""
    return {"rtol": 1e-5, "atol": 1e-5} if cache_dtype == torch.float32 else {"rtol": 1e-4, "atol": 1e-4}


@pytest.mark.parametrize("cache_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize(
    ("batch", "heads", "kv_heads", "length", "dim"),
    [(1, 9, 3, 1030, 64), (1, 9, 3, 1, 64), (2, 32, 4, 300, 64), (1, 8, 8, 17, 128), (1, 9, 3, 257, 64),
     (1, 6, 2, 40, 48), (1, 5, 1, 33, 64)],
)  # fmt: skip
def test_decode_attention_equals_sdpa_on_a_cache_prefix(batch, heads, kv_heads, length, dim, cache_dtype):
    cache_k, cache_v = torch.randn(2, batch, kv_heads, length + 40, dim).to(cache_dtype)
    k, v = cache_k[:, :, :length], cache_v[:, :, :length]  # views into a longer cache, as in decode
    q = torch.randn(batch, heads, 1, dim) * 3  # sharp softmaxes too
    # A bfloat16 cache is widened exactly, so the float32 math over the same values is the reference.
    reference = F.scaled_dot_product_attention(q, k.float(), v.float(), enable_gqa=True)
    reference = reference.view(batch, heads, dim)
    out = torch.ops.ember_kernels.decode_attention(q.view(batch, heads, dim), k, v, dim**-0.5)
    torch.testing.assert_close(out, reference, **attention_tolerance(cache_dtype))


def test_decode_attention_refuses_a_head_dim_it_cannot_vectorise():
    q, k = torch.randn(1, 2, 24), torch.randn(1, 2, 5, 24)
    with pytest.raises(RuntimeError, match="D a multiple of 16"):
        torch.ops.ember_kernels.decode_attention(q, k, k, 0.2)


@pytest.mark.parametrize("cache_dtype", [torch.float32, torch.bfloat16])
def test_paged_decode_attention_reads_blocks_in_place_as_sdpa_reads_them_gathered(cache_dtype):
    torch.manual_seed(3)
    blocks, block_size, kv_heads, heads, dim = 40, 16, 3, 9, 64
    k_pool, v_pool = torch.randn(2, blocks, block_size, kv_heads, dim).to(cache_dtype)
    lengths = [1, 16, 17, 300, 513]  # a lone key, a full block, one past it, several 256-key chunks
    width = max(-(-n // block_size) for n in lengths)
    tables = torch.full((len(lengths), width), blocks - 1)  # padding points at a block nobody reads
    order = torch.randperm(blocks - 1)  # a row's blocks are scattered through the pool
    for row, n in enumerate(lengths):
        used = -(-n // block_size)
        tables[row, :used] = order[:used].roll(row)
    q = torch.randn(len(lengths), heads, dim) * 3
    counts = torch.tensor(lengths)
    out = torch.ops.ember_kernels.paged_decode_attention(q, k_pool, v_pool, tables, counts, dim**-0.5)
    for row, n in enumerate(lengths):
        keys = k_pool[tables[row]].flatten(0, 1)[:n].transpose(0, 1).float()  # (kv_heads, n, dim)
        values = v_pool[tables[row]].flatten(0, 1)[:n].transpose(0, 1).float()
        reference = F.scaled_dot_product_attention(q[row].unsqueeze(1), keys, values, enable_gqa=True)
        torch.testing.assert_close(out[row], reference.squeeze(1), **attention_tolerance(cache_dtype))


def test_decode_attention_refuses_a_cache_of_another_dtype():
    q, k = torch.randn(1, 2, 16), torch.randn(1, 2, 5, 16, dtype=torch.float16)
    with pytest.raises(RuntimeError, match="float32 or bfloat16 cache"):
        torch.ops.ember_kernels.decode_attention(q, k, k, 0.25)


def test_paged_decode_attention_refuses_a_block_outside_the_pool():
    k_pool = torch.randn(4, 16, 1, 16)
    q, tables = torch.randn(1, 2, 16), torch.tensor([[0, 7]])
    with pytest.raises(RuntimeError, match="lists block 7, outside the pool"):
        torch.ops.ember_kernels.paged_decode_attention(q, k_pool, k_pool, tables, torch.tensor([20]), 0.25)
