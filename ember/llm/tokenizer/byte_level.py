"""Build a Tokenizer from a byte-level BPE vocabulary written in GPT-2's byte-to-unicode alphabet
(the form HF tokenizer.json and GGUF metadata both use)."""

from __future__ import annotations

from ember.llm.tokenizer.byte_unicode import token_bytes
from ember.llm.tokenizer.tokenizer import Tokenizer


def from_byte_level_vocab(
    source: str,
    pattern: str,
    vocab: dict[str, int],
    merges: list[tuple[str, str]],
    special_tokens: dict[str, int],
    **options: object,
) -> Tokenizer:
    """``vocab`` maps alphabet strings to ids; ``merges`` in priority order; special tokens (HF's added
    tokens, GGUF's control tokens) are taken out of the ordinary vocabulary.

    A merge's priority comes from its position in ``merges``, never from its result's id: the two
    orders differ in some vocabularies, and HF applies merges by position.
    """
    special_ids = set(special_tokens.values())
    ordinary = {i: token_bytes(text) for text, i in vocab.items() if i not in special_ids}
    merge_order: list[int] = []
    for index, (left, right) in enumerate(merges):
        merged = vocab.get(left + right)
        if merged is None or left not in vocab or right not in vocab:
            raise ValueError(
                f"{source}: merge {index} ({left!r} {right!r}) uses a token missing from the vocab"
            )
        merge_order.append(merged)
    return Tokenizer(pattern, ordinary, list(dict.fromkeys(merge_order)), special_tokens, **options)
