"""Language-modelling quality: bits per byte of held-out text (tokenizer-independent)."""

from __future__ import annotations

import math

import torch

from ember.llm.inference.kv_cache import KVCache
from ember.llm.inference.model import Transformer


@torch.inference_mode()
def bits_per_byte(
    model: Transformer, tokenizer, text: str, window: int = 1024, step_by_step: bool = False
) -> float:
    """Total negative log2-likelihood of ``text``'s tokens (after the first) per UTF-8 byte.

    ``step_by_step`` scores one token per forward pass through the KV cache, the way generation
    computes them: quantized layers then run their decode kernels, which also quantize activations.
    """
    ids = tokenizer.encode(text)
    if len(ids) < 2:
        raise ValueError("text is too short to score: it needs at least two tokens")
    score = _window_by_steps if step_by_step else _window_at_once
    nats = sum(score(model, ids[start : start + window + 1]) for start in range(0, len(ids) - 1, window))
    scored_bytes = len(text.encode("utf-8")) - len(tokenizer.decode(ids[:1]).encode("utf-8"))
    return nats / math.log(2) / scored_bytes


def _window_at_once(model: Transformer, ids: list[int]) -> float:
    chunk = torch.tensor([ids])
    logprobs = model(chunk[:, :-1]).log_softmax(-1)
    return -logprobs.gather(-1, chunk[:, 1:].unsqueeze(-1)).sum().item()


def _window_by_steps(model: Transformer, ids: list[int]) -> float:
    weight = next(p for p in model.parameters() if p.is_floating_point())
    cache = KVCache(model.config, 1, len(ids), weight.dtype, weight.device)
    nats = 0.0
    for position in range(len(ids) - 1):
        token, at = torch.tensor([[ids[position]]]), torch.tensor([[position]])
        logits = model(token, at, cache, kv_len=position + 1, sees_whole_cache=True)[0, -1]
        nats -= logits.log_softmax(-1)[ids[position + 1]].item()
    return nats
