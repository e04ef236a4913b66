"""The paged KV cache's bookkeeping: block tables, reference counts, chained prefix keys, LRU eviction."""

import pytest

from ember.llm.inference.paged_kv import BlockPool, BlockTable

SIZE = 4


@pytest.fixture
def pool():
    pool = BlockPool(num_blocks=8, block_size=SIZE)
    yield pool
    assert pool.used == 0 and sum(pool.refcounts) == 0  # every test gives back what it took


def prompt(pool: BlockPool, ids: list[int]) -> tuple[BlockTable, int]:
    table = BlockTable()
    cached = pool.allocate_prompt(table, ids)
    pool.register_full_blocks(table, ids, len(ids))  # as if the prompt had been computed
    return table, cached


def test_a_prompt_takes_one_block_per_started_block_and_frees_them(pool):
    table, cached = prompt(pool, list(range(10)))
    assert cached == 0 and len(table.blocks) == 3 and pool.used == 3
    assert len(set(table.blocks)) == 3 and all(pool.refcounts[b] == 1 for b in table.blocks)
    pool.free(table)
    assert pool.used == 0 and table.blocks == []


def test_a_shared_prefix_reuses_full_blocks_but_never_the_last_tokens_block(pool):
    first, _ = prompt(pool, list(range(12)))  # three full blocks
    second, cached = prompt(pool, list(range(12)))
    # The block holding the last token is recomputed: its logits are needed.
    assert cached == 8 and second.blocks[:2] == first.blocks[:2] and second.blocks[2] != first.blocks[2]
    assert [pool.refcounts[b] for b in second.blocks] == [2, 2, 1]
    assert (pool.prefix_queries, pool.prefix_hits) == (2 + 2, 2)  # the first prompt found nothing
    pool.free(first)
    pool.free(second)


def test_keys_chain_over_the_whole_prefix(pool):
    first, _ = prompt(pool, [1, 2, 3, 4, 5, 6, 7, 8, 9])
    # Same second block, different first block: the second block is a different prefix, so no hit.
    other, cached = prompt(pool, [0, 0, 0, 0, 5, 6, 7, 8, 9])
    assert cached == 0 and not set(other.blocks) & set(first.blocks)
    pool.free(first)
    pool.free(other)


def test_freed_keyed_blocks_stay_cached_until_evicted_least_recently_freed_first(pool):
    old, _ = prompt(pool, [1] * 8 + [2])
    pool.free(old)
    new, _ = prompt(pool, [3] * 8 + [4])
    pool.free(new)
    assert pool.used == 0 and pool.available == 8
    # Five fresh blocks: the four never keyed, then one evicted: the older prefix's second block.
    filler = BlockTable()
    pool.allocate_prompt(filler, [9, 8, 7, 6] * 5)
    again_new, cached_new = prompt(pool, [3] * 8 + [4])  # its third block evicts the old first block
    assert cached_new == 8  # the newer prefix survived
    pool.free(filler)
    pool.free(again_new)
    again_old, cached_old = prompt(pool, [1] * 8 + [2])
    assert cached_old == 0  # the older one was evicted
    pool.free(again_old)


def test_append_slot_grows_the_table_and_says_when_the_pool_is_empty(pool):
    table = BlockTable()
    pool.allocate_prompt(table, list(range(SIZE)))
    assert pool.append_slot(table, SIZE) and len(table.blocks) == 1  # still fits
    for length in range(SIZE + 1, 8 * SIZE + 1):
        assert pool.append_slot(table, length)
    assert len(table.blocks) == 8 and not pool.append_slot(table, 8 * SIZE + 1)
    with pytest.raises(MemoryError, match="1 KV blocks needed, 0 available"):
        pool.allocate_prompt(BlockTable(), [1])
    pool.free(table)
