"""One continuous-batching forward pass: the scheduled tokens of many sequences, flattened, with
their keys and values read through block tables (on CPUs with Ember's kernels, decodes read the
blocks in place; elsewhere a gather and SDPA, which runs on any device)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ember.llm.inference.model import Transformer
from ember.llm.inference.paged_kv import AttentionGroup, BlockTable, PagedBatch, PagedKVCache


@dataclass
class Work:
    """Feed ``token_ids[start:end]`` of one sequence (its keys 0..start-1 are already cached)."""

    token_ids: list[int]
    table: BlockTable
    start: int
    end: int


def forward_step(model: Transformer, cache: PagedKVCache, works: list[Work]) -> torch.Tensor:
    """Logits (len(works), V) at the last fed token of each work. One-token works (decodes) come
    first and share one attention group; each longer chunk (prefill) gets its own."""
    device = cache.k[0].device
    order = sorted(range(len(works)), key=lambda i: works[i].end - works[i].start > 1)
    tokens, positions, slots, last = [], [], [], [0] * len(works)
    for i in order:
        work = works[i]
        tokens += work.token_ids[work.start : work.end]
        positions += range(work.start, work.end)
        slots += cache.slots(work.table, work.start, work.end)
        last[i] = len(tokens) - 1
    decodes = [works[i] for i in order if works[i].end - works[i].start == 1]
    groups = [_group(cache, 0, decodes, 1, device)] if decodes else []
    start = len(decodes)
    for work in (works[i] for i in order[len(decodes) :]):
        groups.append(_group(cache, start, [work], work.end - work.start, device))
        start += work.end - work.start
    batch = PagedBatch(torch.tensor(slots, device=device), groups)
    return model.forward_paged(
        torch.tensor(tokens, device=device),
        torch.tensor(positions, device=device),
        cache,
        batch,
        torch.tensor(last, device=device),
    )


def _group(cache: PagedKVCache, start: int, works: list[Work], length: int, device) -> AttentionGroup:
    """Rows of ``length`` queries each; row r's query q sits at position works[r].start + q and sees
    keys 0 .. that position (padding blocks point at the scratch block and stay masked)."""
    keys = max(w.end for w in works)
    width = cache.pool.blocks_for(keys)
    blocks = torch.full((len(works), width), cache.scratch_block, dtype=torch.long)
    for row, work in enumerate(works):
        used = cache.pool.blocks_for(work.end)
        blocks[row, :used] = torch.tensor(work.table.blocks[:used])
    query_pos = torch.tensor([w.start for w in works]).view(-1, 1, 1) + torch.arange(length).view(1, -1, 1)
    hidden = torch.arange(keys).view(1, 1, -1) > query_pos
    key_counts = torch.tensor([w.end for w in works], device=device)
    # Additive, in the dtype attention runs in: SDPA on CPU turns a boolean mask into this every layer.
    mask = torch.zeros(hidden.shape, dtype=cache.k[0].dtype).masked_fill_(hidden, float("-inf"))
    mask = mask.unsqueeze(1).to(device)
    return AttentionGroup(start, len(works), length, blocks.to(device), mask, key_counts)
