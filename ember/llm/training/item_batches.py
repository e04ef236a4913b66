"""Batches of whole items (packed SFT rows, DPO pairs): epochs of a seeded shuffle, walked in order.

The cursor is one position in that endless walk, so the batch at a position is a pure function of
(seed, position) and a resumed run sees exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

from ember.llm.training.checkpoints import CheckpointError


class ItemBatches:
    """A ``BatchSource`` (one process): ``collate(indices)`` of ``size`` of the ``count`` items per batch."""

    def __init__(
        self,
        count: int,
        size: int,
        collate: Callable[[list[int]], Any],
        seed: int = 0,
    ) -> None:
        if count < 1:
            raise ValueError("no items to train on")
        self.count, self.size, self.collate, self.seed = count, size, collate, seed
        self.position = 0

    def indices(self, start: int, length: int) -> list[int]:
        """The items at positions ``start`` .. ``start + length - 1`` of the walk."""
        picked = []
        for position in range(start, start + length):
            epoch, offset = divmod(position, self.count)
            order = list(range(self.count))
            random.Random(self.seed * 1_000_003 + epoch).shuffle(order)
            picked.append(order[offset])
        return picked

    def next_batch(self) -> Any:
        start, self.position = self.position, self.position + self.size
        return self.collate(self.indices(start, self.size))

    def state_dict(self) -> dict:
        return {"position": self.position, "seed": self.seed, "count": self.count}

    def load_state_dict(self, state: dict) -> None:
        if state["count"] != self.count:
            raise CheckpointError(
                f"the checkpoint walked {state['count']} training items, this run has {self.count}: "
                "resume with the same data"
            )
        self.position, self.seed = state["position"], state["seed"]
