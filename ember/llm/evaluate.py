"""Language-modelling quality: bits per byte of held-out text (tokenizer-independent)."""

from __future__ import annotations

import math

import torch

from ember.llm.model import Transformer


@torch.inference_mode()
def bits_per_byte(model: Transformer, tokenizer, text: str, window: int = 1024) -> float:
    """Total negative log2-likelihood of ``text``'s tokens (after the first) per UTF-8 byte."""
    ids = tokenizer.encode(text)
    if len(ids) < 2:
        raise ValueError("text is too short to score: it needs at least two tokens")
    nats = 0.0
    for start in range(0, len(ids) - 1, window):
        chunk = torch.tensor([ids[start : start + window + 1]])
        logprobs = model(chunk[:, :-1]).log_softmax(-1)
        nats -= logprobs.gather(-1, chunk[:, 1:].unsqueeze(-1)).sum().item()
    scored_bytes = len(text.encode("utf-8")) - len(tokenizer.decode(ids[:1]).encode("utf-8"))
    return nats / math.log(2) / scored_bytes
