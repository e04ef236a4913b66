"""Structure-aware chunking.

Blocks are joined into one normalized text (blank line between blocks); every chunk is a slice of it,
so its character span is exact. Chunks never cross a change of page, and start afresh at each section
(heading) unless the open chunk is still small, in which case neighbouring sections share a chunk and
the chunk keeps their common heading path. Within a section, blocks are packed up to the token budget;
a block larger than the budget is split between words. Consecutive chunks of one section overlap by
about ``overlap`` tokens, always starting at a word boundary. A single "word" larger than the whole
budget (a long URL or base64 blob) is the only thing ever cut mid-word.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from ember.platform.ingest.document import Block
from ember.platform.ingest.tokens import TokenCounter

SEPARATOR = "\n\n"
_WORD = re.compile(r"\S+")


@dataclass(frozen=True)
class ChunkDraft:
    text: str
    token_count: int
    char_start: int
    char_end: int
    page: int | None
    heading_path: tuple[str, ...]


@dataclass(frozen=True)
class _Unit:
    start: int
    end: int
    tokens: int
    heading_path: tuple[str, ...]
    page: int | None
    section: int


def _common_prefix(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    first = paths[0]
    length = len(first)
    for other in paths[1:]:
        length = min(length, len(other))
        for i in range(length):
            if first[i] != other[i]:
                length = i
                break
    return first[:length]


class Chunker:
    def __init__(self, counter: TokenCounter, chunk_size: int = 384, overlap: int = 64) -> None:
        if chunk_size <= 0:
            raise ValueError(f"chunk size must be positive, got {chunk_size}")
        if not 0 <= overlap < chunk_size // 2 + 1:
            raise ValueError(
                f"overlap must be between 0 and half the chunk size ({chunk_size}), got {overlap}"
            )
        self.counter = counter
        self.chunk_size = chunk_size
        self.overlap = overlap
        self.small_section = chunk_size // 4

    @property
    def signature(self) -> str:
        return f"chunker-v1:{self.chunk_size}:{self.overlap}:{self.counter.name}"

    def chunk(self, blocks: Sequence[Block]) -> tuple[str, list[ChunkDraft]]:
        """The normalized document text and its chunks."""
        text, units = self._units(blocks)
        return text, self._pack(text, units)

    def _units(self, blocks: Sequence[Block]) -> tuple[str, list[_Unit]]:
        parts: list[str] = []
        units: list[_Unit] = []
        offset, section = 0, -1
        previous_key = None
        for block in blocks:
            key = (block.heading_path, block.page)
            if block.is_heading or key != previous_key:
                section += 1
            previous_key = key
            if parts:
                parts.append(SEPARATOR)
                offset += len(SEPARATOR)
            parts.append(block.text)
            budget = self.chunk_size - self.overlap
            for start, end in self._split_long(block.text, budget):
                tokens = self.counter.count_tokens(block.text[start:end])
                units.append(
                    _Unit(offset + start, offset + end, tokens, block.heading_path, block.page, section)
                )
            offset += len(block.text)
        return "".join(parts), units

    def _split_long(self, text: str, budget: int) -> list[tuple[int, int]]:
        """Spans of ``text`` of at most ``budget`` tokens each, cut between words."""
        if self.counter.count_tokens(text) <= budget:
            return [(0, len(text))]
        spans: list[tuple[int, int]] = []
        start = end = None
        used = 0
        for word in _WORD.finditer(text):
            tokens = self.counter.count_tokens(word.group())
            if tokens > budget:  # one enormous "word": the only case cut by characters
                if start is not None:
                    spans.append((start, end))
                    start, used = None, 0
                step = max(1, len(word.group()) * budget // tokens)
                spans.extend((i, min(i + step, word.end())) for i in range(word.start(), word.end(), step))
                continue
            if start is not None and used + tokens > budget:
                spans.append((start, end))
                start, used = None, 0
            if start is None:
                start = word.start()
            end, used = word.end(), used + tokens
        if start is not None:
            spans.append((start, end))
        return spans

    def _overlap_start(self, text: str, start: int, end: int) -> int:
        """A word boundary in [start, end) about ``overlap`` tokens before ``end``."""
        if self.overlap == 0 or end <= start:
            return end
        span = text[start:end]
        tokens = self.counter.count_tokens(span)
        if tokens <= self.overlap:
            return start
        position = len(span) - len(span) * self.overlap // tokens
        while position > 0 and not span[position - 1].isspace():
            position -= 1  # move back to the start of the word
        while position < len(span) and self.counter.count_tokens(span[position:]) > self.overlap:
            next_space = span.find(" ", position)
            position = len(span) if next_space < 0 else next_space + 1
        while position < len(span) and span[position].isspace():
            position += 1
        return start + position if position < len(span) else end

    def _pack(self, text: str, units: list[_Unit]) -> list[ChunkDraft]:
        chunks: list[ChunkDraft] = []
        current: list[_Unit] = []
        lead = None  # overlap carried from the previous chunk of the same section
        used = 0

        def emit() -> None:
            nonlocal current, used, lead
            start = lead if lead is not None else current[0].start
            end = current[-1].end
            body = text[start:end]
            chunks.append(
                ChunkDraft(
                    text=body,
                    token_count=self.counter.count_tokens(body),
                    char_start=start,
                    char_end=end,
                    page=current[0].page,
                    heading_path=_common_prefix([u.heading_path for u in current]),
                )
            )
            current, used, lead = [], 0, None

        for unit in units:
            if current:
                same_page = unit.page == current[-1].page
                same_section = unit.section == current[-1].section
                fits = used + unit.tokens <= self.chunk_size
                if not same_page or (not same_section and (used >= self.small_section or not fits)):
                    emit()
                elif not fits:
                    previous_end = current[-1].end
                    previous_start = lead if lead is not None else current[0].start
                    emit()
                    lead = self._overlap_start(text, previous_start, previous_end)
                    used = self.counter.count_tokens(text[lead:previous_end])
                    if lead >= previous_end or used + unit.tokens > self.chunk_size:
                        lead, used = None, 0
            current.append(unit)
            used += unit.tokens
        if current:
            emit()
        return chunks
