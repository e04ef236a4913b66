"""How the answer and agent summaries print a median and a share, for empty runs too."""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def share(count: int, of: int) -> str:
    """``count/of (percent)``, or ``n/a`` when there is nothing to count."""
    return f"{count}/{of} ({100 * count / of:.0f}%)" if of else "n/a"
