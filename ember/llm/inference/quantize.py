"""Weight-only quantization of the linear layers: int8 per output channel, int4 groupwise.

Quantized weights are stored in a portable layout (int8 rows; int4 packed two per byte with a
scale and minimum per group) and converted at load time to the layout of torch's fused kernels
(``_weight_int8pack_mm``, ``_weight_int4pack_mm_for_cpu`` / ``_weight_int4pack_mm``) when the
running torch has them and they reproduce the dequantized result; otherwise the layer
dequantizes on the fly.

On CPU the fused kernels are fast only with bf16 activations and only for a few rows (decode):
measured here, ``_weight_int8pack_mm`` takes 1.15 ms for a 1x576 @ 576x1536 product with fp32
input but 51 us with bf16, and is 3x slower than a bf16 matmul at 500 rows. So quantized layers
compute in bf16 on CPU, use the kernel up to ``KERNEL_MAX_ROWS`` rows, and for prefill
dequantize the weight to bf16 and run one matmul.

On CPUs with AVX512-VNNI, int8 and int4 layers use Ember's own kernels (ember.llm.kernels)
instead: they quantize the activations to int8 in blocks of 32 and multiply integers, which reads
the weights at about twice the speed of ``_weight_int8pack_mm`` (that one converts every weight to
bf16 before multiplying). They keep their own copy of the weights in their tile layout. Measured on
an AVX512-VNNI + AVX512-BF16 CPU (2 cores) they also beat dequantize + bf16 matmul at every row
count up to 512 (576 -> 3072: 2.8 against 4.7 ms at 512 rows), so batched decode and prefill use
them too; only CPUs with AMX tiles, whose bf16 products are far faster, hand long inputs to oneDNN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ember.llm.kernels import cpu_has_amx, cpu_has_native_bf16, cpu_kernels_available

MODES = ("int8", "int4")
KERNEL_MAX_ROWS = 8
# Rows above which Ember's kernels hand over to dequantize + matmul (none, except on AMX CPUs).
VNNI_MAX_ROWS = 64 if cpu_has_amx() else None
# Without native bf16 (an AVX2 CPU) a bf16 matmul runs ~4x slower than fp32. There torch's fused kernel
# (bf16 activations) wins up to ~128 rows (decodes, small prefill chunks), and above that dequantizing to
# fp32 is faster (1,000 rows of 576 -> 1536: 11 ms against 21 ms for the kernel and 91 ms for bf16).
NO_NATIVE_BF16 = not cpu_has_native_bf16()
TORCH_KERNEL_MAX_ROWS = 128 if NO_NATIVE_BF16 else KERNEL_MAX_ROWS


def dequantized_dtype(compute: torch.dtype) -> torch.dtype:
    """The dtype of the dequantize-then-matmul path (prefill), fp32 where bf16 has no native support."""
    return torch.float32 if NO_NATIVE_BF16 and compute == torch.bfloat16 else compute


def compute_dtype(device: torch.device, dtype: torch.dtype) -> torch.dtype:
    return torch.bfloat16 if device.type == "cpu" else dtype


def _vnni_takes(rows: int) -> bool:
    """Whether Ember's kernels take a product of ``rows`` rows (AMX CPUs hand long inputs to oneDNN)."""
    return VNNI_MAX_ROWS is None or rows <= VNNI_MAX_ROWS


def _matmul_dtype(layer: nn.Module, x: torch.Tensor, torch_kernel: bool) -> torch.dtype:
    """The dtype a quantized layer multiplies ``x`` in: float32 in Ember's kernels, its compute dtype
    in torch's fused kernels, and the dequantized dtype in dequantize + matmul."""
    rows = x.numel() // layer.in_features
    if layer.kernel == "vnni" and _vnni_takes(rows):
        return torch.float32
    dtype = getattr(layer, "compute_dtype", x.dtype)
    return dtype if torch_kernel and rows <= TORCH_KERNEL_MAX_ROWS else dequantized_dtype(dtype)


def _kernel_agrees(kernel_out: torch.Tensor, reference: torch.Tensor, tolerance: float = 1e-2) -> bool:
    scale = reference.abs().max().clamp(min=1e-6)
    return bool(((kernel_out.float() - reference.float()).abs().max() / scale) < tolerance)


def pack_int8_for_vnni(weight: torch.Tensor) -> torch.Tensor:
    """int8 (N, K) weights as ember.llm.kernels wants them: +128 as uint8, in (N/16, K/4, 16, 4) tiles."""
    n, k = weight.shape
    offset = (weight.to(torch.int16) + 128).to(torch.uint8)
    return offset.view(n // 16, 16, k // 4, 4).permute(0, 2, 1, 3).contiguous()


def pack_int4_for_vnni(
    codes: torch.Tensor, scales: torch.Tensor, mins: torch.Tensor, group_size: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(N, K) 4-bit codes and (N, K / group_size) scales and minimums in int4_gemv.cpp's layout:
    codes (N/16, K/32, 8, 32), each byte two channels 8 apart; scales, minimums (N/16, K/32, 16) fp16."""
    n, k = codes.shape
    groups = codes.view(n // 16, 16, k // 4, 4).permute(0, 2, 1, 3).reshape(n // 16, k // 32, 8, 64)
    packed = (groups[..., :32] | (groups[..., 32:] << 4)).contiguous()

    def per_block(values: torch.Tensor) -> torch.Tensor:
        blocks = values.repeat_interleave(group_size // 32, dim=1)
        return blocks.view(n // 16, 16, k // 32).permute(0, 2, 1).contiguous().half()

    return packed, per_block(scales), per_block(mins)


class Int8Linear(nn.Module):
    """y = x @ (int8 weight * per-row scale)^T."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.register_buffer("weight", torch.zeros(out_features, in_features, dtype=torch.int8))
        self.register_buffer("scales", torch.ones(out_features))
        self.kernel: str | None = None  # "vnni" (ember.llm.kernels), "torch" (_weight_int8pack_mm), None

    @classmethod
    def from_linear(cls, linear: nn.Linear) -> Int8Linear:
        w = linear.weight.detach().float()
        layer = cls(w.shape[1], w.shape[0])
        scales = (w.abs().amax(dim=1) / 127).clamp(min=1e-8)
        layer.weight.copy_(torch.round(w / scales[:, None]).clamp(-127, 127).to(torch.int8))
        layer.scales.copy_(scales)
        return layer

    def dequantized(self) -> torch.Tensor:
        return self.weight.float() * self.scales[:, None]

    def prepare(self, dtype: torch.dtype) -> None:
        """Pick the compute dtype, and a fused kernel if one exists and matches the reference math."""
        self.compute_dtype = compute_dtype(self.weight.device, dtype)
        self.kernel_scales = self.scales.to(self.compute_dtype)
        self.kernel = None
        self.__dict__.pop("vnni_weight", None)
        if self.weight.device.type != "cpu":
            return
        reference_probe = torch.randn(2, self.in_features)
        reference = reference_probe @ self.dequantized().T
        if self.out_features % 16 == 0 and self.in_features % 32 == 0 and cpu_kernels_available():
            self.vnni_weight = pack_int8_for_vnni(self.weight)
            out = torch.ops.ember_kernels.int8_linear(reference_probe, self.vnni_weight, self.scales)
            # The activations are quantized too, so agreement is looser than for the bf16 kernel.
            if _kernel_agrees(out, reference, tolerance=3e-2):
                self.kernel = "vnni"
                return
            del self.vnni_weight
        if hasattr(torch.ops.aten, "_weight_int8pack_mm"):
            if self.weight.data_ptr() % 64:
                # torch's AVX512 kernel loads the weight 64-byte aligned and crashes otherwise; weights
                # mapped from a safetensors file can start at any offset
                self.weight = self.weight.clone()
            probe = reference_probe.to(self.compute_dtype)
            try:
                out = torch.ops.aten._weight_int8pack_mm(probe, self.weight, self.kernel_scales)
            except RuntimeError:
                return
            self.kernel = "torch" if _kernel_agrees(out, reference) else None

    def matmul_dtype(self, x: torch.Tensor) -> torch.dtype:
        """The dtype this layer multiplies ``x`` in (Ember's kernels take float32)."""
        return _matmul_dtype(self, x, torch_kernel=self.kernel == "torch")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        dtype = self.matmul_dtype(x)
        flat = x.reshape(rows, self.in_features).to(dtype)
        if self.kernel == "vnni" and _vnni_takes(rows):
            out = torch.ops.ember_kernels.int8_linear(flat, self.vnni_weight, self.scales)
        elif self.kernel == "torch" and rows <= TORCH_KERNEL_MAX_ROWS:
            out = torch.ops.aten._weight_int8pack_mm(flat, self.weight, self.kernel_scales)
        else:
            # Under torch.compile the convert fuses into the matmul; on CPU this is the prefill path.
            out = F.linear(flat, self.weight.to(dtype)) * self.scales.to(dtype)
        return out.to(x.dtype).view(*x.shape[:-1], self.out_features)


class Int4Linear(nn.Module):
    """Asymmetric 4-bit groupwise weights: w = q * scale + minimum, q in 0..15, two q per byte."""

    def __init__(self, in_features: int, out_features: int, group_size: int = 32) -> None:
        super().__init__()
        if in_features % group_size or group_size % 2:
            raise ValueError(f"in_features {in_features} is not a multiple of group_size {group_size}")
        self.in_features, self.out_features, self.group_size = in_features, out_features, group_size
        groups = in_features // group_size
        self.register_buffer("packed", torch.zeros(out_features, in_features // 2, dtype=torch.uint8))
        self.register_buffer("scales", torch.ones(out_features, groups))
        self.register_buffer("mins", torch.zeros(out_features, groups))
        self.kernel: str | None = None

    @classmethod
    def from_linear(cls, linear: nn.Linear, group_size: int = 32) -> Int4Linear:
        w = linear.weight.detach().float()
        layer = cls(w.shape[1], w.shape[0], group_size)
        grouped = w.reshape(w.shape[0], -1, group_size)
        lo, hi = grouped.amin(-1), grouped.amax(-1)
        scales = ((hi - lo) / 15).clamp(min=1e-8)
        q = torch.round((grouped - lo[..., None]) / scales[..., None]).clamp(0, 15).to(torch.uint8)
        q = q.reshape(w.shape)
        layer.packed.copy_(q[:, 0::2] | (q[:, 1::2] << 4))
        layer.scales.copy_(scales)
        layer.mins.copy_(lo)
        return layer

    def unpacked(self) -> torch.Tensor:
        """The 4-bit codes as an (out, in) uint8 tensor."""
        low, high = self.packed & 0x0F, self.packed >> 4
        return torch.stack((low, high), dim=-1).reshape(self.out_features, self.in_features)

    def dequantized(self, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        q = self.unpacked().to(dtype).reshape(self.out_features, -1, self.group_size)
        w = q * self.scales.to(dtype)[..., None] + self.mins.to(dtype)[..., None]
        return w.reshape(self.out_features, self.in_features)

    def prepare(self, dtype: torch.dtype) -> None:
        """Convert to a fused kernel's layout: Ember's (AVX512-VNNI CPUs) or torch's (tinygemm
        convention: (q - 8) * scale + zero)."""
        self.kernel = None
        device = self.packed.device
        dtype = self.compute_dtype = compute_dtype(device, dtype)
        self.__dict__.pop("vnni_layout", None)
        if device.type == "cpu" and self._prepare_vnni():
            return
        zeros = self.mins + 8 * self.scales
        scales_and_zeros = torch.stack((self.scales, zeros), dim=-1).transpose(0, 1).contiguous().to(dtype)
        try:
            if device.type == "cpu" and hasattr(torch.ops.aten, "_weight_int4pack_mm_for_cpu"):
                self.kernel_weight = torch.ops.aten._convert_weight_to_int4pack_for_cpu(
                    self.unpacked().to(torch.int32), 1
                )
                kernel = "cpu"
            elif device.type == "cuda" and hasattr(torch.ops.aten, "_weight_int4pack_mm"):
                q = self.unpacked()
                self.kernel_weight = torch.ops.aten._convert_weight_to_int4pack(
                    (q[:, 0::2] << 4 | q[:, 1::2]).contiguous(), 8
                )
                kernel = "cuda"
            else:
                return
            self.scales_and_zeros = scales_and_zeros
            self.kernel = kernel
            probe = torch.randn(2, self.in_features, dtype=dtype, device=device)
            ok = _kernel_agrees(self._kernel_mm(probe), probe.float() @ self.dequantized().T)
        except RuntimeError:
            ok = False
        if not ok:
            self.kernel = None

    def _prepare_vnni(self) -> bool:
        if self.group_size % 32 or self.out_features % 16 or not cpu_kernels_available():
            return False
        self.vnni_layout = pack_int4_for_vnni(self.unpacked(), self.scales, self.mins, self.group_size)
        probe = torch.randn(2, self.in_features)
        out = torch.ops.ember_kernels.int4_linear(probe, *self.vnni_layout)
        # The activations are quantized too, so agreement is looser than for the bf16 kernels.
        if _kernel_agrees(out, probe @ self.dequantized().T, tolerance=3e-2):
            self.kernel = "vnni"
            return True
        del self.vnni_layout
        return False

    def _kernel_mm(self, flat: torch.Tensor) -> torch.Tensor:
        if self.kernel == "cpu":
            op = torch.ops.aten._weight_int4pack_mm_for_cpu
        else:
            op = torch.ops.aten._weight_int4pack_mm
        return op(flat, self.kernel_weight, self.group_size, self.scales_and_zeros)

    def matmul_dtype(self, x: torch.Tensor) -> torch.dtype:
        """The dtype this layer multiplies ``x`` in (Ember's kernels take float32)."""
        return _matmul_dtype(self, x, torch_kernel=self.kernel in ("cpu", "cuda"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = x.numel() // self.in_features
        dtype = self.matmul_dtype(x)
        flat = x.reshape(rows, self.in_features).to(dtype)
        if self.kernel == "vnni" and _vnni_takes(rows):
            out = torch.ops.ember_kernels.int4_linear(flat, *self.vnni_layout)
        elif self.kernel in ("cpu", "cuda") and rows <= TORCH_KERNEL_MAX_ROWS:
            out = self._kernel_mm(flat)
        else:
            out = F.linear(flat, self.dequantized(dtype))
        return out.to(x.dtype).view(*x.shape[:-1], self.out_features)


def quantized_linears(model: nn.Module):
    """(parent, attribute name, linear) for every linear layer that quantization replaces."""
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, nn.Linear):
                yield parent, name, child


def quantize_model(model: nn.Module, mode: str, group_size: int = 32) -> nn.Module:
    """Replace every linear layer (LM head included) with its quantized form, in place."""
    if mode not in MODES:
        raise ValueError(f"quantization mode {mode!r} is not one of {MODES}")
    for parent, name, linear in quantized_linears(model):
        if mode == "int8":
            setattr(parent, name, Int8Linear.from_linear(linear))
        else:
            setattr(parent, name, Int4Linear.from_linear(linear, group_size))
    return model


def empty_quantized(model: nn.Module, mode: str, group_size: int) -> nn.Module:
    """Swap in quantized layers of the right shapes, to be filled by load_state_dict."""
    for parent, name, linear in quantized_linears(model):
        out_f, in_f = linear.weight.shape
        layer = Int8Linear(in_f, out_f) if mode == "int8" else Int4Linear(in_f, out_f, group_size)
        setattr(parent, name, layer)
    return model


def prepare_quantized(model: nn.Module, dtype: torch.dtype) -> None:
    for module in model.modules():
        if isinstance(module, Int8Linear | Int4Linear):
            module.prepare(dtype)
