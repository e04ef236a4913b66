"""How well a tokenizer compresses text."""

from __future__ import annotations


def bytes_per_token(num_bytes: int, num_tokens: int) -> float:
    """Average UTF-8 bytes per token id: higher means better compression."""
    if num_tokens <= 0:
        raise ValueError(f"num_tokens must be positive, got {num_tokens}")
    return num_bytes / num_tokens
