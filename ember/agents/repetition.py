"""Spotting an answer that has fallen into a loop, so generation can stop and the loop can be cut.

Greedy decoding on a small model (more often on its int8 copy) can end in a loop: a sentence said again
and again, a fragment such as "-local-local-local-…", or a block that only counts up. A repetition
penalty cannot prevent it here: it would also penalise the passage words a grounded answer must quote.
Instead the text's end is checked as it streams: a long unit repeated three times or a short one six
times is a loop."""

from __future__ import annotations

import re

TAIL_CHARS = 1000  # only the end of the text can hold a loop that is still growing
_LOOPS = (
    re.compile(r"(.{10,300}?)(?:\s*\1){2,}\s*$", re.DOTALL),  # a sentence or more, three times
    re.compile(r"(.{3,19}?)\1{5,}$", re.DOTALL),  # a fragment, six times
)


_NUMBER_OR_SPACE = re.compile(r"\d+|\s+")
_SENTENCE_END = re.compile(r"[.!?](?:\s*\[\d+(?:\s*,\s*\d+)*\])*")


def loop_start(text: str) -> int | None:
    """Where the repeats of a loop at the end of ``text`` begin (after its first copy), or None."""
    tail_start = max(0, len(text) - TAIL_CHARS)
    masked, origin = _normalized(text[tail_start:])
    starts = []
    for pattern in _LOOPS:
        match = pattern.search(masked)
        if match:
            first, end = (
                tail_start + origin[i] for i in (match.start(), match.start() + len(match.group(1)))
            )
            # A loop caught mid-sentence repeats a rotated sentence: keep whole sentences only.
            ends = [m.end() for m in _SENTENCE_END.finditer(text, first, end)]
            starts.append(ends[-1] if ends else end)
    return min(starts, default=None)


def _normalized(text: str) -> tuple[str, list[int]]:
    """``text`` with every number as "0" and every run of whitespace as one space, so a loop that counts
    ("# 9 … # 10 … # 11") or wraps its lines differently repeats exactly; and for each position of it (and
    its end) the position in ``text``."""
    pieces, origin, cursor = [], [], 0
    for run in _NUMBER_OR_SPACE.finditer(text):
        pieces += [text[cursor : run.start()], "0" if run.group()[0].isdigit() else " "]
        origin += [*range(cursor, run.start()), run.start()]
        cursor = run.end()
    pieces.append(text[cursor:])
    origin += range(cursor, len(text) + 1)
    return "".join(pieces), origin


def cut_loop(text: str) -> tuple[str, bool]:
    """``text`` with a loop at its end cut to one copy, and whether there was one."""
    start = loop_start(text)
    return (text, False) if start is None else (text[:start].rstrip(), True)
