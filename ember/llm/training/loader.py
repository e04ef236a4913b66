"""Batches from token shards: BOS-aligned best-fit packing with a seeded shuffle and a resumable cursor.

Packing unit: a segment of at most ``seq_len + 1`` tokens. A document that fits is one segment, which
starts with its BOS; a longer one is cut into several, so its text is trained on instead of cropped.
Each row is filled from a buffer of segments: the longest that still fits, again and again; when none
fits, the shortest is cropped to fill the row. Every row therefore starts at a segment start and no
token is padding. The cursor (epoch, position in the epoch's permutation, the buffer) is all the state,
so a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import numpy as np
import torch

from ember.llm.training.shards import Shard


class PackedBatches:
    """Training batches of ``rows`` x ``seq_len`` (inputs, targets); ``rank`` of ``world`` takes its rows."""

    def __init__(
        self,
        shards: list[Shard],
        rows: int,
        seq_len: int,
        seed: int = 0,
        buffer_size: int = 64,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.shards, self.rows, self.seq_len, self.seed = shards, rows, seq_len, seed
        self.buffer_size, self.rank, self.world = buffer_size, rank, world
        self.segments = _segments(shards, seq_len + 1)  # (shard, start, length) per row
        self.epoch, self.position, self.buffer = 0, 0, []
        self._order = self._permutation()

    def _permutation(self) -> np.ndarray:
        return np.random.default_rng([self.seed, self.epoch]).permutation(len(self.segments))

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "position": self.position,
            "buffer": list(self.buffer),
            "seed": self.seed,
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.position, self.buffer = state["epoch"], state["position"], list(state["buffer"])
        self.seed = state["seed"]
        self._order = self._permutation()

    def _take(self) -> int:
        if self.position == len(self._order):
            self.epoch, self.position = self.epoch + 1, 0
            self._order = self._permutation()
        self.position += 1
        return int(self._order[self.position - 1])

    def _row(self) -> np.ndarray:
        space, parts = self.seq_len + 1, []
        lengths = self.segments[:, 2]
        while space:
            while len(self.buffer) < self.buffer_size:
                self.buffer.append(self._take())
            sizes = lengths[self.buffer]
            fits = np.flatnonzero(sizes <= space)
            pick = fits[np.argmax(sizes[fits])] if fits.size else int(np.argmin(sizes))
            shard, start, length = self.segments[self.buffer.pop(int(pick))]
            take = min(int(length), space)
            parts.append(self.shards[shard].tokens[start : start + take])
            space -= take
        return np.concatenate(parts).astype(np.int64)

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's rows of the next ``rows * world`` packed rows, as (inputs, targets)."""
        rows = [self._row() for _ in range(self.rows * self.world)]
        mine = torch.from_numpy(np.stack(rows[self.rank * self.rows : (self.rank + 1) * self.rows]))
        return mine[:, :-1], mine[:, 1:]


def _segments(shards: list[Shard], most: int) -> np.ndarray:
    table = []
    for index, shard in enumerate(shards):
        ends = np.append(shard.doc_starts[1:], shard.tokens.size)
        for start, end in zip(shard.doc_starts.tolist(), ends.tolist(), strict=True):
            for piece in range(start, end, most):
                table.append((index, piece, min(most, end - piece)))
    return np.asarray(table, dtype=np.int64)


def validation_batches(
    shards: list[Shard], rows: int, seq_len: int, max_tokens: int | None = None, rank: int = 0, world: int = 1
):
    """The val split as one stream cut into (inputs, targets) batches, in order, this rank's share.

    Every token is scored once (up to ``max_tokens``); rows may cross documents, whose BOS
    predictions bits-per-byte does not count.
    """
    stream = np.concatenate([shard.tokens for shard in shards])
    if max_tokens is not None:
        stream = stream[: max_tokens + 1]
    window = rows * seq_len
    for number, start in enumerate(range(0, stream.size - 1, window)):
        if number % world != rank:
            continue
        chunk = torch.from_numpy(stream[start : start + window + 1].astype(np.int64))
        inputs, targets = chunk[:-1], chunk[1:]
        full = inputs.numel() // seq_len * seq_len
        if full:
            yield inputs[:full].view(-1, seq_len), targets[:full].view(-1, seq_len)
        if full < inputs.numel():
            yield inputs[full:].view(1, -1), targets[full:].view(1, -1)
