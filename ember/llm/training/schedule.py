"""Learning-rate multiplier: linear warmup, constant, linear warmdown to ``final``."""

from __future__ import annotations


def lr_multiplier(step: int, total: int, warmup: int, warmdown: int, final: float = 0.0) -> float:
    """Multiplier for optimizer step ``step`` (0-based) of ``total``."""
    if step < warmup:
        return (step + 1) / warmup
    left = total - step
    if left <= warmdown:
        return final + (1 - final) * left / max(warmdown, 1)
    return 1.0
