"""Ember's int8 x int8 CPU decode kernel: exact to its own arithmetic, close to the dequantized math."""

import pytest
import torch

from ember.llm import kernels
from ember.llm.quantize import Int8Linear, pack_for_vnni

pytestmark = pytest.mark.skipif(
    not kernels.int8_kernel_available(), reason="needs AVX512-VNNI and a C++ compiler"
)


def quantized_weight(out_features: int, in_features: int) -> tuple[torch.Tensor, torch.Tensor]:
    w = torch.randn(out_features, in_features) * 0.05
    scales = w.abs().amax(1) / 127
    return torch.round(w / scales[:, None]).to(torch.int8), scales


def emulated(x: torch.Tensor, weight: torch.Tensor, scales: torch.Tensor) -> torch.Tensor:
    """The kernel's arithmetic in float64: activations rounded to int8 per block of 32."""
    blocks = x.double().view(x.shape[0], -1, 32)
    block_scales = blocks.abs().amax(-1, keepdim=True) / 127
    codes = torch.round(blocks / torch.where(block_scales > 0, block_scales, 1.0))
    dequantized_x = (codes * block_scales).view_as(x)
    return (dequantized_x @ weight.double().T * scales.double()).float()


@pytest.mark.parametrize("rows", [1, 2, 5, 8, 11])
@pytest.mark.parametrize(("out_features", "in_features"), [(16, 32), (192, 576), (576, 1536)])
def test_kernel_equals_its_emulation_and_is_close_to_the_float_math(rows, out_features, in_features):
    weight, scales = quantized_weight(out_features, in_features)
    x = torch.randn(rows, in_features) * 3
    x[0, 5] = 80.0  # an outlier feature only flattens its own block of 32
    out = torch.ops.ember_kernels.int8_linear(x, pack_for_vnni(weight), scales)
    assert out.shape == (rows, out_features)
    torch.testing.assert_close(out, emulated(x, weight, scales), rtol=1e-4, atol=1e-4)
    reference = x @ (weight.float() * scales[:, None]).T
    assert (out - reference).abs().max() < 0.02 * reference.abs().max()


def test_zero_rows_give_zero_output():
    weight, scales = quantized_weight(32, 64)
    out = torch.ops.ember_kernels.int8_linear(torch.zeros(3, 64), pack_for_vnni(weight), scales)
    assert torch.equal(out, torch.zeros(3, 32))


def test_wrong_shapes_are_refused_with_a_reason():
    weight, scales = quantized_weight(32, 64)
    with pytest.raises(RuntimeError, match="K must match"):
        torch.ops.ember_kernels.int8_linear(torch.zeros(1, 96), pack_for_vnni(weight), scales)


def test_layers_use_the_kernel_for_decode_and_torch_when_turned_off(monkeypatch):
    linear = torch.nn.Linear(64, 48, bias=False)
    layer = Int8Linear.from_linear(linear)
    layer.prepare(torch.float32)
    assert layer.kernel == "vnni"
    x = torch.randn(1, 64)
    assert (layer(x) - linear(x)).abs().max() < 0.03 * linear(x).abs().max()

    monkeypatch.setenv("EMBER_NATIVE_KERNELS", "false")
    kernels.int8_kernel_available.cache_clear()
    try:
        layer.prepare(torch.float32)
        assert layer.kernel == "torch"
        assert not hasattr(layer, "packed")
    finally:
        monkeypatch.delenv("EMBER_NATIVE_KERNELS")
        kernels.int8_kernel_available.cache_clear()
