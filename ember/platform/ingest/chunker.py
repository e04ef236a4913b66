"""Structure-aware chunking.

Blocks are joined into one normalized text (blank line between blocks); every chunk is a slice of it,
so its character span is exact. Chunks never cross a change of page, and start afresh at each section
(heading) unless the open chunk is still small, in which case neighbouring sections share a chunk and
the chunk keeps their common heading path. Within a section, blocks are packed up to the token budget;
a block larger than the budget is split between words. Consecutive chunks of one section overlap by
about ``overlap`` tokens, always starting at a word boundary. Each piece of text is counted once; a
chunk's token count is the sum of its pieces and separators (exact for the word counter, within a
few tokens for BPE). A single "word" larger than the whole
budget (a long URL or base64 blob) is the only thing ever cut mid-word. Whatever the counter says, no
chunk is longer than ``chunk_size * MAX_CHARS_PER_TOKEN`` characters: a word counter sees a 5 MB run
without spaces as one token.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from ember.platform.ingest.document import Block
from ember.platform.ingest.tokens import TokenCounter

SEPARATOR = "\n\n"
MAX_CHARS_PER_TOKEN = 16  # far above real text's average, so the cap only cuts what counters cannot


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
        # A counter whose counts don't add up exactly (BPE) packs with a margin and is recounted per chunk.
        self.exact = getattr(counter, "additive", False)
        self.budget = chunk_size if self.exact else int(chunk_size * 0.95)
        self.max_chars = chunk_size * MAX_CHARS_PER_TOKEN

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
        budget = self.budget - self.overlap
        for block in blocks:
            key = (block.heading_path, block.page)
            if block.is_heading or key != previous_key:
                section += 1
            previous_key = key
            if parts:
                parts.append(SEPARATOR)
                offset += len(SEPARATOR)
            parts.append(block.text)
            for start, end, tokens in self._split_long(block.text, budget):
                units.append(
                    _Unit(offset + start, offset + end, tokens, block.heading_path, block.page, section)
                )
            offset += len(block.text)
        return "".join(parts), units

    def _split_long(self, text: str, budget: int) -> list[tuple[int, int, int]]:
        """Spans of ``text`` of at most ``budget`` tokens and ``max_chars`` characters each, cut between
        words, with their counts.

        Each span's end is first estimated from the text's characters per token, then moved back to
        a word boundary, then shrunk word by word in the rare case the estimate was too generous.
        """
        total = self.counter.count_tokens(text)
        if total <= budget and len(text) <= self.max_chars:
            return [(0, len(text), total)]
        chars_per_token = len(text) / max(total, 1)
        spans: list[tuple[int, int, int]] = []
        start = 0
        while start < len(text):
            end = min(len(text), start + max(1, int(budget * chars_per_token)), start + self.max_chars)
            if end < len(text):
                boundary = text.rfind(" ", start, end + 1)
                boundary = max(boundary, text.rfind("\n", start, end + 1))
                if boundary > start:
                    end = boundary  # else one word longer than the budget: cut it by characters
            tokens = self.counter.count_tokens(text[start:end])
            while tokens > budget:
                boundary = max(text.rfind(" ", start, end), text.rfind("\n", start, end))
                end = boundary if boundary > start else start + max(1, (end - start) * budget // tokens)
                tokens = self.counter.count_tokens(text[start:end])
            spans.append((start, end, tokens))
            start = end
            while start < len(text) and text[start].isspace():
                start += 1
        return [(a, b, n) for a, b, n in spans if n > 0 or text[a:b].strip()]

    def _overlap_start(self, text: str, start: int, end: int, tokens: int) -> tuple[int, int]:
        """A word start in [start, end) about ``overlap`` tokens before ``end``, and the tail's count."""
        if self.overlap == 0 or end <= start:
            return end, 0
        if tokens <= self.overlap:
            return start, tokens
        position = end - (end - start) * self.overlap // tokens
        while position > start and not text[position - 1].isspace():
            position -= 1  # back to the start of the word
        tail = self.counter.count_tokens(text[position:end])
        while tail > self.overlap and position < end:
            following = text.find(" ", position, end)
            position = end if following < 0 else following + 1
            tail = self.counter.count_tokens(text[position:end])
        while position < end and text[position].isspace():
            position += 1
        return (position, tail) if position < end else (end, 0)

    def _pack(self, text: str, units: list[_Unit]) -> list[ChunkDraft]:
        chunks: list[ChunkDraft] = []
        current: list[_Unit] = []
        lead: int | None = None  # start of the overlap carried from the previous chunk of the section
        used = 0  # tokens in the open chunk, overlap included
        separator = self.counter.count_tokens(SEPARATOR)

        def emit() -> None:
            nonlocal current, used, lead
            start = lead if lead is not None else current[0].start
            body = text[start : current[-1].end]
            chunks.append(
                ChunkDraft(
                    text=body,
                    token_count=used if self.exact else self.counter.count_tokens(body),
                    char_start=start,
                    char_end=current[-1].end,
                    page=current[0].page,
                    heading_path=_common_prefix([u.heading_path for u in current]),
                )
            )
            current, used, lead = [], 0, None

        for unit in units:
            if current:
                same_page = unit.page == current[-1].page
                same_section = unit.section == current[-1].section
                open_start = lead if lead is not None else current[0].start
                fits = (
                    used + separator + unit.tokens <= self.budget and unit.end - open_start <= self.max_chars
                )
                if not same_page or (not same_section and (used >= self.small_section or not fits)):
                    emit()
                elif not fits:
                    previous_start = lead if lead is not None else current[0].start
                    previous_end, previous_used = current[-1].end, used
                    emit()
                    lead, used = self._overlap_start(text, previous_start, previous_end, previous_used)
                    too_long = unit.end - lead > self.max_chars
                    if lead >= previous_end or used + separator + unit.tokens > self.budget or too_long:
                        lead, used = None, 0
            if current or lead is not None:
                used += separator
            current.append(unit)
            used += unit.tokens
        if current:
            emit()
        return chunks
