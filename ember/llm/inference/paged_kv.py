"""A paged key/value cache: fixed-size blocks, a block table per sequence, reference counts, and
prefix caching.

Every layer's keys and values live in one pool of ``num_blocks * block_size`` slots; a sequence owns
the blocks its block table lists, and token ``i`` of the sequence lives in slot
``table[i // block_size] * block_size + i % block_size``. A full block is keyed by a hash chained over
every token before and in it, so two sequences with the same prefix share the blocks of that prefix.
Blocks nobody references keep their contents and their key in an LRU: a later request with the same
prefix takes them back; a request that needs fresh blocks evicts the least recently freed first.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

import torch

from ember.llm.inference.config import ModelConfig


def chained_hash(previous: int | None, token_ids: tuple[int, ...]) -> int:
    """Key of a full block: its tokens and, through ``previous``, every token before them."""
    return hash((previous, token_ids))


@dataclass
class BlockTable:
    """One sequence's blocks, in token order, and how many of them are full and keyed."""

    blocks: list[int] = field(default_factory=list)
    hashes: list[int] = field(default_factory=list)  # keys of the first len(hashes) (full) blocks


class BlockPool:
    """Allocation, sharing and prefix caching of the cache's blocks (no tensors: pure bookkeeping)."""

    def __init__(self, num_blocks: int, block_size: int) -> None:
        if num_blocks < 1 or block_size < 1:
            raise ValueError(f"a KV pool needs blocks: got num_blocks={num_blocks}, block_size={block_size}")
        self.num_blocks, self.block_size = num_blocks, block_size
        self.refcounts = [0] * num_blocks
        self._free = list(range(num_blocks - 1, -1, -1))  # never used since the last eviction
        self._cached: OrderedDict[int, None] = OrderedDict()  # unreferenced but keyed, oldest first
        self._by_hash: dict[int, int] = {}
        self._key: dict[int, tuple[int, tuple[int, ...]]] = {}  # block -> (hash, its tokens)
        self.prefix_queries = self.prefix_hits = 0  # full prompt blocks looked up, and found

    @property
    def used(self) -> int:
        """Blocks some sequence references."""
        return self.num_blocks - len(self._free) - len(self._cached)

    @property
    def available(self) -> int:
        return len(self._free) + len(self._cached)

    @property
    def hit_rate(self) -> float:
        return self.prefix_hits / self.prefix_queries if self.prefix_queries else 0.0

    def blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.block_size)

    def allocate_prompt(self, table: BlockTable, token_ids: list[int]) -> int:
        """Give ``table`` (empty) the blocks of ``token_ids``, reusing cached full blocks of its prefix;
        returns how many leading tokens are already in the cache. The block holding the last token is
        never taken from the cache: its logits are needed, so it is computed."""
        if table.blocks:
            raise ValueError("allocate_prompt needs an empty block table")
        needed = self.blocks_for(len(token_ids))
        if needed > self.available:
            raise MemoryError(f"{needed} KV blocks needed, {self.available} available")
        size, previous = self.block_size, None
        reusable = (len(token_ids) - 1) // size
        for index in range(reusable):
            tokens = tuple(token_ids[index * size : (index + 1) * size])
            key = chained_hash(previous, tokens)
            block = self._by_hash.get(key)
            self.prefix_queries += 1
            if block is None or self._key[block][1] != tokens:
                self.prefix_queries += reusable - index - 1  # the chain is broken: the rest miss too
                break
            self.prefix_hits += 1
            self._take(block)
            table.blocks.append(block)
            table.hashes.append(key)
            previous = key
        cached = len(table.blocks) * size
        while len(table.blocks) < needed:
            table.blocks.append(self._fresh())
        return cached

    def append_slot(self, table: BlockTable, length: int) -> bool:
        """Make room for token ``length - 1``; False when no block is left (the caller preempts)."""
        if self.blocks_for(length) <= len(table.blocks):
            return True
        if not self.available:
            return False
        table.blocks.append(self._fresh())
        return True

    def register_full_blocks(self, table: BlockTable, token_ids: list[int], computed: int) -> None:
        """Key every block whose tokens are all computed, so later prompts can share it."""
        size = self.block_size
        while len(table.hashes) < computed // size:
            index = len(table.hashes)
            tokens = tuple(token_ids[index * size : (index + 1) * size])
            key = chained_hash(table.hashes[-1] if table.hashes else None, tokens)
            block = table.blocks[index]
            if key not in self._by_hash and block not in self._key:
                self._by_hash[key] = block
                self._key[block] = (key, tokens)
            table.hashes.append(key)

    def free(self, table: BlockTable) -> None:
        """Drop the table's references; keyed blocks stay cached, most recently freed last."""
        for block in reversed(table.blocks):  # the tail is the least shareable: evict it first
            self.refcounts[block] -= 1
            if self.refcounts[block] == 0:
                if block in self._key:
                    self._cached[block] = None
                else:
                    self._free.append(block)
        table.blocks.clear()
        table.hashes.clear()

    def _take(self, block: int) -> None:
        if self.refcounts[block] == 0:
            del self._cached[block]
        self.refcounts[block] += 1

    def _fresh(self) -> int:
        if self._free:
            block = self._free.pop()
        else:
            block, _ = self._cached.popitem(last=False)  # evict the least recently freed
            key, _ = self._key.pop(block)
            del self._by_hash[key]
        self.refcounts[block] = 1
        return block


@dataclass
class AttentionGroup:
    """Queries ``start .. start + rows * length`` of a flattened step, as ``rows`` sequences of
    ``length`` tokens each, attending over the blocks ``blocks`` (rows, max blocks) lists; ``mask``
    (rows, 1, length, keys), additive in the cache's dtype (0 or -inf), hides future keys and
    padding; ``key_counts`` (rows,) how many keys each row's last query sees."""

    start: int
    rows: int
    length: int
    blocks: torch.Tensor
    mask: torch.Tensor
    key_counts: torch.Tensor


@dataclass
class PagedBatch:
    """Where one step's tokens write their keys and values (``slots``, one per token) and what each
    group of them reads. Decodes form one group of one-token rows; each prefill chunk its own."""

    slots: torch.Tensor
    groups: list[AttentionGroup]


class PagedKVCache:
    """Keys and values of every layer as (blocks, block_size, kv_heads, head_dim), plus one scratch
    block at the end that padded block tables point to (always masked)."""

    def __init__(
        self,
        config: ModelConfig,
        num_blocks: int,
        block_size: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        self.pool = BlockPool(num_blocks, block_size)
        self.block_size = block_size
        self.scratch_block = num_blocks
        shape = (num_blocks + 1, block_size, config.n_kv_heads, config.head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layers)]

    def slots(self, table: BlockTable, start: int, end: int) -> list[int]:
        """Slots of tokens ``start..end-1`` of the sequence whose blocks ``table`` lists."""
        size = self.block_size
        return [table.blocks[i // size] * size + i % size for i in range(start, end)]

    @staticmethod
    def bytes_per_block(config: ModelConfig, block_size: int, dtype: torch.dtype) -> int:
        element = torch.tensor([], dtype=dtype).element_size()
        return 2 * config.n_layers * block_size * config.n_kv_heads * config.head_dim * element
