"""Byte-level BPE training: count unique pre-tokens once, then merge with incremental pair counts.

Tie-break rule (deterministic): each step merges the pair with the highest count; among equal counts,
the pair whose (left bytes, right bytes) is smallest in lexicographic byte order wins. On the classic
corpus low x5, lower x2, newest x6, widest x3 (no end-of-word marker) the first merges are therefore
"es", "est", "lo", "low": ("e","s") beats ("s","t") at count 9, and ("l","o") beats ("o","w") at 7.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from concurrent.futures import ProcessPoolExecutor

import regex
from tqdm import tqdm

BATCH_CHARS = 1 << 20  # texts are counted in ~1 MB batches so worker processes stay busy


def _count_batch(args: tuple[str, list[str]]) -> Counter[str]:
    pattern, texts = args
    finder = regex.compile(pattern).findall
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(finder(text))
    return counts


def _batches(texts: Iterable[str], pattern: str) -> Iterable[tuple[str, list[str]]]:
    batch: list[str] = []
    size = 0
    for text in texts:
        batch.append(text)
        size += len(text)
        if size >= BATCH_CHARS:
            yield pattern, batch
            batch, size = [], 0
    if batch:
        yield pattern, batch


def count_pretokens(texts: Iterable[str], pattern: str, workers: int = 1) -> Counter[str]:
    """How often each pre-token (a piece of the split) occurs in ``texts``."""
    total: Counter[str] = Counter()
    if workers <= 1:
        for batch in _batches(texts, pattern):
            total.update(_count_batch(batch))
        return total
    with ProcessPoolExecutor(workers) as pool:
        for counts in pool.map(_count_batch, _batches(texts, pattern), chunksize=1):
            total.update(counts)
    return total


def _merge_word(word: list[int], left: int, right: int, new_id: int) -> list[int]:
    merged: list[int] = []
    i, n = 0, len(word)
    while i < n:
        if i + 1 < n and word[i] == left and word[i + 1] == right:
            merged.append(new_id)
            i += 2
        else:
            merged.append(word[i])
            i += 1
    return merged


def train_merges(
    pretoken_counts: Mapping[str, int] | Mapping[bytes, int], num_merges: int, progress: bool = False
) -> list[bytes]:
    """Learn up to ``num_merges`` merges; returns the new tokens' bytes in merge order (ids 256, 257, ...).

    Stops early when no pair occurs any more. See the module docstring for the tie-break rule.
    """
    vocab: list[bytes] = [bytes([b]) for b in range(256)]
    known: dict[bytes, int] = {token: index for index, token in enumerate(vocab)}
    words: list[list[int]] = []
    counts: list[int] = []
    for token, count in pretoken_counts.items():
        raw = token.encode("utf-8") if isinstance(token, str) else token
        if len(raw) > 1:
            words.append(list(raw))
            counts.append(count)

    pair_counts: dict[tuple[int, int], int] = {}
    where: dict[tuple[int, int], set[int]] = {}
    for index, word in enumerate(words):
        count = counts[index]
        for pair in zip(word, word[1:], strict=False):
            pair_counts[pair] = pair_counts.get(pair, 0) + count
            holders = where.get(pair)
            if holders is None:
                where[pair] = {index}
            else:
                holders.add(index)

    # A max-heap via negated counts; entries go stale as counts drop and are refreshed when popped.
    heap = [(-count, vocab[a], vocab[b], a, b) for (a, b), count in pair_counts.items()]
    heapq.heapify(heap)
    new_tokens: list[bytes] = []
    bar = tqdm(total=num_merges, desc="merges", unit="merge", disable=not progress)
    while len(new_tokens) < num_merges and heap:
        negative, left_bytes, right_bytes, left, right = heapq.heappop(heap)
        pair = (left, right)
        current = pair_counts.get(pair, 0)
        if current <= 0:
            continue
        if current != -negative:
            heapq.heappush(heap, (-current, left_bytes, right_bytes, left, right))
            continue
        joined = left_bytes + right_bytes
        # Two different pairs can spell the same bytes (ab+c, a+bc): reuse the token so ids stay unique.
        new_id = known.get(joined, len(vocab))
        if new_id == len(vocab):
            known[joined] = new_id
            vocab.append(joined)
            new_tokens.append(joined)
            bar.update(1)
        touched: set[tuple[int, int]] = set()
        for index in where.pop(pair):
            word = words[index]
            merged = _merge_word(word, left, right, new_id)
            if len(merged) == len(word):
                continue  # the pair left this word in an earlier merge (holder sets are cleaned lazily)
            count = counts[index]
            for old in zip(word, word[1:], strict=False):
                pair_counts[old] -= count
            for new in zip(merged, merged[1:], strict=False):
                pair_counts[new] = pair_counts.get(new, 0) + count
                if new_id in new:
                    touched.add(new)
                    holders = where.get(new)
                    if holders is None:
                        where[new] = {index}
                    else:
                        holders.add(index)
            words[index] = merged
        pair_counts.pop(pair, None)
        for a, b in touched:
            heapq.heappush(heap, (-pair_counts[(a, b)], vocab[a], vocab[b], a, b))
    bar.close()
    return new_tokens
