"""The model a run trains: the engine's own Transformer, fresh (a depth dial) or an installed checkpoint."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from ember.llm.inference.checkpoint import load_model, load_tokenizer
from ember.llm.inference.config import ModelConfig
from ember.llm.inference.model import Transformer

HEAD_DIM = 64


def config_for_depth(depth: int, vocab_size: int, seq_len: int, width: int | None = None) -> ModelConfig:
    """The one size dial: ``depth`` layers, width 64 x depth (or ``width``), 64-wide heads, SwiGLU 8/3."""
    if depth < 1:
        raise ValueError(f"depth must be at least 1, got {depth}")
    d_model = width or HEAD_DIM * depth
    if d_model % HEAD_DIM:
        raise ValueError(f"width {d_model} is not divisible by the head size {HEAD_DIM}")
    heads = d_model // HEAD_DIM
    ffn = math.ceil(d_model * 8 / 3 / 64) * 64
    return ModelConfig(
        vocab_size=vocab_size,
        d_model=d_model,
        n_layers=depth,
        n_heads=heads,
        n_kv_heads=heads,
        ffn_dim=ffn,
        max_seq_len=seq_len,
        tie_embeddings=False,
    )


def fresh_model(config: ModelConfig, seed: int) -> Transformer:
    """A new model: unit-variance embeddings, a near-zero head (first loss ~ ln vocab), fan-in scaled
    matrices, and zero output projections so every block starts as the identity."""
    torch.manual_seed(seed)
    model = Transformer(config)
    with torch.no_grad():
        nn.init.normal_(model.tok_emb.weight, std=1.0)
        if not config.tie_embeddings:
            nn.init.normal_(model.lm_head.weight, std=0.001)
        for block in model.layers:
            for linear in (block.attn.wq, block.attn.wk, block.attn.wv, block.ffn.w_gate, block.ffn.w_up):
                nn.init.normal_(linear.weight, std=linear.in_features**-0.5)
            nn.init.zeros_(block.attn.wo.weight)
            nn.init.zeros_(block.ffn.w_down.weight)
    return model


def installed_model(directory: Path, seq_len: int) -> tuple[Transformer, object]:
    """An installed fp32/bf16 checkpoint made trainable (continued pretraining), with its tokenizer."""
    model = load_model(directory)
    if model.config.max_seq_len < seq_len:
        raise ValueError(
            f"{directory}: the model's context is {model.config.max_seq_len}, below --seq-len {seq_len}"
        )
    if any(not p.is_floating_point() for p in model.parameters()):
        raise ValueError(
            f"{directory}: a quantized model cannot be trained; start from its full-precision copy"
        )
    return model.train().requires_grad_(True), load_tokenizer(directory)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def flops_per_token(config: ModelConfig, seq_len: int) -> float:
    """Training FLOPs per token: 6 x the matmul parameters (embedding lookups excluded) + attention."""
    d, layers = config.d_model, config.n_layers
    kv = config.n_kv_heads * config.head_dim
    per_layer = 2 * d * d + 2 * d * kv + 3 * d * config.ffn_dim
    matmul = layers * per_layer + d * config.vocab_size
    return 6 * matmul + 12 * layers * d * seq_len
