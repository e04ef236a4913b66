"""Decode with one native call per decoder block (ember.llm.kernels' decode_block, and
paged_decode_block for continuous-batching steps in which every sequence decodes).

Each block's Q, K and V projections become one product, and so do the gate and up projections:
their kernel weights are stacked along the outputs once, and every layer's own kernel then reads
its slice of the stack, so the weights are held once.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ember.llm.inference.kv_cache import KVCache
from ember.llm.inference.paged_kv import PagedBatch, PagedKVCache
from ember.llm.inference.quantize import Int4Linear, Int8Linear


@dataclass
class FusedBlock:
    """One block's norms and kernel weights, as decode_block takes them."""

    attn_norm: torch.Tensor
    ffn_norm: torch.Tensor
    qkv: list[torch.Tensor]
    wo: list[torch.Tensor]
    gate_up: list[torch.Tensor]
    down: list[torch.Tensor]
    n_heads: int
    eps: float

    def __call__(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        at: torch.Tensor,
        cache: KVCache,
        layer: int,
    ) -> torch.Tensor:
        """x (1, 1, d) at position ``at`` (1, 1), the end of the cache's filled slots."""
        out = torch.ops.ember_kernels.decode_block(
            x.view(1, -1), self.attn_norm, self.ffn_norm, self.qkv, self.wo, self.gate_up, self.down,
            cache.k[layer], cache.v[layer], cos.reshape(-1), sin.reshape(-1), at, self.n_heads, self.eps,
        )  # fmt: skip
        return out.view_as(x)

    def paged(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: PagedKVCache,
        batch: PagedBatch,
        layer: int,
    ) -> torch.Tensor:
        """x (1, R, d): a continuous-batching step in which every one of R sequences decodes one token."""
        (group,) = batch.groups
        out = torch.ops.ember_kernels.paged_decode_block(
            x[0], self.attn_norm, self.ffn_norm, self.qkv, self.wo, self.gate_up, self.down,
            cache.k[layer], cache.v[layer], cos.reshape(x.shape[1], -1), sin.reshape(x.shape[1], -1),
            batch.slots, group.blocks, group.key_counts, self.n_heads, self.eps,
        )  # fmt: skip
        return out.view_as(x)


def kernel_weights(linear: nn.Module) -> list[torch.Tensor] | None:
    """The tensors of a layer's native kernel, or None where it has none (float, LoRA, another CPU)."""
    if isinstance(linear, Int8Linear) and linear.kernel == "vnni":
        return [linear.vnni_weight, linear.scales]
    if isinstance(linear, Int4Linear) and linear.kernel == "vnni":
        return list(linear.vnni_layout)
    return None


def _point_at(linear: nn.Module, tensors: list[torch.Tensor]) -> None:
    if isinstance(linear, Int8Linear):
        linear.vnni_weight = tensors[0]  # scales stay the layer's own buffer (a small copy is stacked)
    else:
        linear.vnni_layout = tuple(tensors)


def stack_outputs(linears: list[nn.Module]) -> list[torch.Tensor] | None:
    """Kernel weights of layers that share an input, stacked along their outputs; each layer is
    re-pointed at its slice, so the stack is the only copy."""
    parts = [kernel_weights(linear) for linear in linears]
    if any(p is None for p in parts) or len({type(linear) for linear in linears}) != 1:
        return None
    stacked = [torch.cat(tensors) for tensors in zip(*parts, strict=True)]
    start = 0
    for linear, own in zip(linears, parts, strict=True):
        rows = own[0].shape[0]
        _point_at(linear, [whole[start : start + rows] for whole in stacked])
        start += rows
    return stacked


def fused_block(block: nn.Module) -> FusedBlock | None:
    attn, ffn = block.attn, block.ffn
    if attn.q_norm is not None or block.attn_norm.weight.dtype != torch.float32:
        return None
    qkv = stack_outputs([attn.wq, attn.wk, attn.wv])
    gate_up = stack_outputs([ffn.w_gate, ffn.w_up])
    wo, down = kernel_weights(attn.wo), kernel_weights(ffn.w_down)
    if qkv is None or gate_up is None or wo is None or down is None:
        return None
    return FusedBlock(
        block.attn_norm.weight.detach(), block.ffn_norm.weight.detach(), qkv, wo, gate_up, down,
        attn.n_heads, block.attn_norm.eps,
    )  # fmt: skip


def use_fused_decode(model: nn.Module, enabled: bool = True) -> int:
    """Route decode steps of each block that has native kernel weights (int8 or int4 on an AVX512-VNNI
    CPU) and native decode attention to the fused kernels; returns how many blocks use them."""
    count = 0
    for block in model.layers:
        block.fused_decode = fused_block(block) if enabled and block.attn.native_decode else None
        count += block.fused_decode is not None
    return count


def kv_cache_dtype(model: nn.Module, compute_dtype: torch.dtype) -> torch.dtype:
    """bfloat16 where decode runs through the fused kernels, else the compute dtype.

    At a long context a decode step is bound by reading the cache: at 1,000 tokens SmolLM2's float32
    cache is 46 MB a step beside 135 MB of int8 weights. The kernels widen bfloat16 to float32 in
    registers, so products stay float32; float models keep a cache of their own dtype (exact parity).
    """
    if any(block.fused_decode is not None for block in model.layers):
        return torch.bfloat16
    return compute_dtype
