"""Compression and likelihood measures that compare models with different tokenizers fairly."""

from __future__ import annotations

import math


def bits_per_byte(total_nats: float, num_bytes: int) -> float:
    """Bits per UTF-8 byte of text, from the summed negative log-likelihood (nats) over all its tokens.

    Unlike per-token loss, this does not reward a tokenizer for making longer tokens.
    """
    if num_bytes <= 0:
        raise ValueError(f"num_bytes must be positive, got {num_bytes}")
    return total_nats / (math.log(2) * num_bytes)


def bytes_per_token(num_bytes: int, num_tokens: int) -> float:
    """Average UTF-8 bytes per token id: higher means better compression."""
    if num_tokens <= 0:
        raise ValueError(f"num_tokens must be positive, got {num_tokens}")
    return num_bytes / num_tokens
