"""Choosing and ordering passages for the prompt: a token budget, and the best passages at both ends.

Models read the start and the end of a long context best ("lost in the middle"), so after the greedy
selection by relevance the order is rank 1, 3, 5, ... then ..., 6, 4, 2: the two best sit at the edges.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from ember.agents.prompts import render_passage
from ember.retrieval.types import Hit


def select_within_budget(
    hits: list[Hit], budget_tokens: int, count_tokens: Callable[[str], int]
) -> list[Hit]:
    """The most relevant hits (in the given order) whose rendered passages fit ``budget_tokens``.

    The best hit alone is cut to fit when it is longer than the whole budget, so a long chunk never
    leaves the model with nothing.
    """
    if budget_tokens <= 0:
        raise ValueError(f"the passage budget must be positive, got {budget_tokens} tokens")
    chosen, used = [], 0
    for hit in hits:
        cost = count_tokens(render_passage(len(chosen) + 1, hit))
        if used + cost <= budget_tokens:
            chosen.append(hit)
            used += cost
        elif not chosen:
            chosen.append(_truncate(hit, budget_tokens, count_tokens))
            break
    return chosen


def _truncate(hit: Hit, budget_tokens: int, count_tokens: Callable[[str], int]) -> Hit:
    words = hit.text.split()
    low, high = 0, len(words)
    while low < high:  # the longest word prefix that fits
        middle = (low + high + 1) // 2
        if count_tokens(render_passage(1, replace(hit, text=" ".join(words[:middle])))) <= budget_tokens:
            low = middle
        else:
            high = middle - 1
    return replace(hit, text=" ".join(words[:low]))


def edges_first(hits: list[Hit]) -> list[Hit]:
    """Relevance order → prompt order with the best at the start and the second best at the end."""
    return hits[0::2] + hits[1::2][::-1]
