"""A Llama-style decoder: RMSNorm, RoPE, SwiGLU, grouped-query attention, optional QK-norm.

Positions are given per row, so one batch can hold sequences at different offsets (no left
padding): attention masks key j for a query at absolute position p unless j <= p.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ember.llm.inference.config import ModelConfig
from ember.llm.inference.kv_cache import KVCache
from ember.llm.inference.paged_kv import PagedBatch, PagedKVCache

# Cache dtypes the native decode kernels read (ember.llm.kernels.decode_attention).
NATIVE_CACHE = (torch.float32, torch.bfloat16)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Normalise in fp32 so bf16 activations keep their precision (as HF Llama does).
        xf = x.float()
        xf = xf * torch.rsqrt(xf.pow(2).mean(-1, keepdim=True) + self.eps)
        return self.weight * xf.to(x.dtype)


def rope_inv_freq(config: ModelConfig) -> torch.Tensor:
    """Inverse frequencies of RoPE, with HF's "linear" and "llama3" scaling rules."""
    dim = config.head_dim
    inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float64, device="cpu") / dim))
    scaling = config.rope_scaling
    if not scaling:
        return inv_freq.float()
    kind = scaling.get("type") or scaling.get("rope_type")
    factor = float(scaling["factor"])
    if kind == "linear":
        return (inv_freq / factor).float()
    if kind == "llama3":
        low, high = float(scaling["low_freq_factor"]), float(scaling["high_freq_factor"])
        old_len = float(scaling["original_max_position_embeddings"])
        wavelen = 2 * math.pi / inv_freq
        smooth = (old_len / wavelen - low) / (high - low)
        blended = (1 - smooth) * inv_freq / factor + smooth * inv_freq
        out = torch.where(wavelen > old_len / low, inv_freq / factor, inv_freq)
        is_mid = (wavelen <= old_len / low) & (wavelen >= old_len / high)
        return torch.where(is_mid, blended, out).float()
    raise ValueError(f"rope_scaling type {kind!r} is not supported (use 'linear' or 'llama3')")


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


class Attention(nn.Module):
    # Set by Transformer.use_native_decode_attention: one-token float32 attention (unmasked, or
    # through block tables) goes to ember.llm.kernels instead of SDPA.
    native_decode = False

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = config.n_heads, config.n_kv_heads, config.head_dim
        self.wq = nn.Linear(config.d_model, config.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(config.d_model, config.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(config.d_model, config.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(config.n_heads * self.head_dim, config.d_model, bias=False)
        self.q_norm = RMSNorm(self.head_dim, config.norm_eps) if config.qk_norm else None
        self.k_norm = RMSNorm(self.head_dim, config.norm_eps) if config.qk_norm else None

    def forward(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        mask: torch.Tensor | None,
        positions: torch.Tensor,
        cache: KVCache | None,
        layer: int,
        kv_len: int | None,
    ) -> torch.Tensor:
        b, t, _ = x.shape
        q, k, v = self._qkv(x, cos, sin)
        native = self.native_decode and mask is None and t == 1 and q.dtype == torch.float32
        if cache is not None:
            k, v = cache.update(layer, positions, k, v, kv_len)
        else:
            k, v = k.transpose(1, 2), v.transpose(1, 2)
        if native:
            scale = self.head_dim**-0.5
            out = torch.ops.ember_kernels.decode_attention(q.view(b, -1, self.head_dim), k, v, scale)
            return self.wo(out.view(b, 1, -1))
        q = q.to(k.dtype)  # attention runs in the cache's dtype (bfloat16 where decode is fused)
        # No mask for several queries: a whole sequence from position 0 (training, scoring, a prefill
        # into an empty cache), where SDPA's causal kernels beat a materialised (T, T) mask, most of
        # all in the backward pass (and 1.5x in a 1,000-token CPU prefill).
        out = F.scaled_dot_product_attention(
            q.transpose(1, 2),
            k,
            v,
            attn_mask=mask,
            is_causal=mask is None and t > 1,
            enable_gqa=self.n_heads != self.n_kv_heads,
        )
        return self.wo(out.transpose(1, 2).reshape(b, t, -1).to(x.dtype))

    def forward_paged(
        self,
        x: torch.Tensor,
        cos: torch.Tensor,
        sin: torch.Tensor,
        cache: PagedKVCache,
        batch: PagedBatch,
        layer: int,
    ) -> torch.Tensor:
        """x (1, N, d): one step's tokens of many sequences, flattened; K/V go through block tables."""
        q, k, v = self._qkv(x, cos, sin)
        k_pool, v_pool = cache.k[layer], cache.v[layer]
        k_pool.view(-1, *k_pool.shape[2:])[batch.slots] = k[0].to(k_pool.dtype)
        v_pool.view(-1, *v_pool.shape[2:])[batch.slots] = v[0].to(v_pool.dtype)
        out = torch.empty_like(q[0])
        for g in batch.groups:
            end = g.start + g.rows * g.length
            native = self.native_decode and q.dtype == torch.float32 and k_pool.dtype in NATIVE_CACHE
            if g.length == 1 and native:
                out[g.start : end] = torch.ops.ember_kernels.paged_decode_attention(
                    q[0, g.start : end], k_pool, v_pool, g.blocks, g.key_counts, self.head_dim**-0.5
                )
                continue
            queries = q[0, g.start : end].view(g.rows, g.length, self.n_heads, self.head_dim).transpose(1, 2)
            # Gather whole blocks: (rows, blocks, size, heads, dim) -> (rows, heads, keys, dim).
            width = g.mask.shape[-1]
            keys = k_pool[g.blocks].flatten(1, 2)[:, :width].transpose(1, 2)
            values = v_pool[g.blocks].flatten(1, 2)[:, :width].transpose(1, 2)
            queries = queries.to(k_pool.dtype)  # attention runs in the cache's dtype
            attended = F.scaled_dot_product_attention(
                queries, keys, values, attn_mask=g.mask, enable_gqa=self.n_heads != self.n_kv_heads
            )
            out[g.start : end] = attended.transpose(1, 2).reshape(-1, self.n_heads, self.head_dim)
        return self.wo(out.view(1, x.shape[1], -1))

    def _qkv(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor):
        """Queries, keys and values (B, T, heads, head_dim), normed (QK-norm) and rotated."""
        b, t, _ = x.shape
        q = self.wq(x).view(b, t, self.n_heads, self.head_dim)
        k = self.wk(x).view(b, t, self.n_kv_heads, self.head_dim)
        v = self.wv(x).view(b, t, self.n_kv_heads, self.head_dim)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        return q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin, v


class FeedForward(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.w_gate = nn.Linear(config.d_model, config.ffn_dim, bias=False)
        self.w_up = nn.Linear(config.d_model, config.ffn_dim, bias=False)
        self.w_down = nn.Linear(config.ffn_dim, config.d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # A quantized layer may multiply in bfloat16 (a CPU prefill through oneDNN): keeping the wide
        # hidden activations in that dtype too halves their memory traffic and skips two conversions.
        h = x.to(self.w_gate.matmul_dtype(x) if hasattr(self.w_gate, "matmul_dtype") else x.dtype)
        return self.w_down(F.silu(self.w_gate(h)) * self.w_up(h)).to(x.dtype)


class Block(nn.Module):
    # Set by fused_decode.use_fused_decode: a decode step (one sequence, or a continuous-batching step
    # where every sequence decodes) runs as one native call.
    fused_decode = None

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.attn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.attn = Attention(config)
        self.ffn_norm = RMSNorm(config.d_model, config.norm_eps)
        self.ffn = FeedForward(config)

    def forward(self, x, cos, sin, mask, positions, cache, layer, kv_len) -> torch.Tensor:
        # No mask with a cache means one row decoding at its position, the end of its filled slots.
        one_token = x.shape[0] == 1 and x.shape[1] == 1 and x.dtype == torch.float32
        if self.fused_decode is not None and one_token and mask is None and cache is not None:
            return self.fused_decode(x, cos, sin, positions, cache, layer)
        x = x + self.attn(self.attn_norm(x), cos, sin, mask, positions, cache, layer, kv_len)
        return x + self.ffn(self.ffn_norm(x))

    def forward_paged(self, x, cos, sin, cache: PagedKVCache, batch: PagedBatch, layer: int) -> torch.Tensor:
        all_decode = len(batch.groups) == 1 and batch.groups[0].length == 1
        native = x.dtype == torch.float32 and cache.k[layer].dtype in NATIVE_CACHE
        if self.fused_decode is not None and all_decode and native:
            return self.fused_decode.paged(x, cos, sin, cache, batch, layer)
        x = x + self.attn.forward_paged(self.attn_norm(x), cos, sin, cache, batch, layer)
        return x + self.ffn(self.ffn_norm(x))


class Transformer(nn.Module):
    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        self.tok_emb = nn.Embedding(config.vocab_size, config.d_model)
        self.layers = nn.ModuleList(Block(config) for _ in range(config.n_layers))
        self.norm = RMSNorm(config.d_model, config.norm_eps)
        self.lm_head = nn.Linear(config.d_model, config.vocab_size, bias=False)
        if config.tie_embeddings:
            self.lm_head.weight = self.tok_emb.weight
        cos, sin = self.rope_tables(config)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)

    def use_native_decode_attention(self, enabled: bool = True) -> None:
        """Route one-token decode attention to Ember's CPU kernel (needs ember.llm.kernels built) where it
        takes the shape: head size a multiple of 16 up to 256, at most 16 query heads per kv head."""
        config = self.config
        fits = (
            config.head_dim % 16 == 0 and config.head_dim <= 256 and config.n_heads // config.n_kv_heads <= 16
        )
        for block in self.layers:
            block.attn.native_decode = enabled and fits

    @staticmethod
    def rope_tables(config: ModelConfig) -> tuple[torch.Tensor, torch.Tensor]:
        """cos and sin of every (position, rotary dim), in HF's rotate-half layout."""
        positions = torch.arange(config.max_seq_len, dtype=torch.float32, device="cpu")
        freqs = torch.outer(positions, rope_inv_freq(config))
        angles = torch.cat((freqs, freqs), dim=-1)
        return angles.cos(), angles.sin()

    def forward(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor | None = None,
        cache: KVCache | None = None,
        kv_len: int | None = None,
        logits_index: torch.Tensor | None = None,
        sees_whole_cache: bool = False,
        logits_at: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Logits for ``tokens`` (B, T) at absolute ``positions`` (B, T), default 0..T-1.

        With a cache, keys/values are written at ``positions`` and attention reads the first
        ``kv_len`` cache slots (all of them when None: the static shape CUDA graphs want).
        ``logits_index`` (B,) picks one position per row, so prefill skips the LM head elsewhere.
        ``sees_whole_cache`` says every query may read all ``kv_len`` slots (one row decoding at the
        end of its cache), so no mask is built: SDPA on CPU is ~25% faster without one.
        ``logits_at`` (B, T) bool keeps only the positions a loss scores: (N, V) logits in row-major
        order. Fine-tuning scores a few answer tokens of long prompts, and the vocabulary-wide head
        over every position would cost a quarter of the step.
        """
        b, t = tokens.shape
        from_start = positions is None  # every row from position 0
        if positions is None:
            positions = torch.arange(t, device=tokens.device).expand(b, t)
        x = self.tok_emb(tokens)
        cos = self.rope_cos[positions].unsqueeze(2).to(x.dtype)
        sin = self.rope_sin[positions].unsqueeze(2).to(x.dtype)
        keys = kv_len if cache is not None and kv_len is not None else None
        if cache is None:
            keys = t
        elif keys is None:
            keys = cache.max_len
        # Causal by absolute position; stale cache slots past a row's position stay hidden. Rows from
        # position 0 over exactly their t keys need no mask (right padding comes after every real token).
        mask = None
        if not (sees_whole_cache or (from_start and keys == t)):
            mask = (torch.arange(keys, device=tokens.device) <= positions.unsqueeze(-1)).unsqueeze(1)
        for i, block in enumerate(self.layers):
            x = block(x, cos, sin, mask, positions, cache, i, kv_len)
        if logits_index is not None:
            x = x[torch.arange(b, device=x.device), logits_index].unsqueeze(1)
        if logits_at is not None:
            x = x[logits_at]
        return self.lm_head(self.norm(x)).float()

    def forward_paged(
        self,
        tokens: torch.Tensor,
        positions: torch.Tensor,
        cache: PagedKVCache,
        batch: PagedBatch,
        logits_index: torch.Tensor,
    ) -> torch.Tensor:
        """Logits (R, V) at ``logits_index`` of one continuous-batching step: ``tokens`` and
        ``positions`` (N,) are the new tokens of many sequences, flattened (no padding through the
        linear layers); attention reads each sequence's keys and values through its block table."""
        x = self.tok_emb(tokens).unsqueeze(0)
        cos = self.rope_cos[positions].unsqueeze(1).unsqueeze(0).to(x.dtype)
        sin = self.rope_sin[positions].unsqueeze(1).unsqueeze(0).to(x.dtype)
        for i, block in enumerate(self.layers):
            x = block.forward_paged(x, cos, sin, cache, batch, i)
        return self.lm_head(self.norm(x[0, logits_index])).float()
