"""Write a Tokenizer into GGUF metadata (tokenizer.ggml.*) as llama.cpp's "gpt2" byte-level BPE, the
form ember.llm.tokenizer.gguf_import reads back."""

from __future__ import annotations

from ember.llm.tokenizer.byte_unicode import byte_to_char
from ember.llm.tokenizer.patterns import GPT2_DIGITS_PATTERN, GPT2_PATTERN, GPT4_PATTERN
from ember.llm.tokenizer.tokenizer import Tokenizer

NORMAL, CONTROL, UNUSED = 1, 3, 5  # llama.cpp token types

# llama.cpp picks its split regex by name (tokenizer.ggml.pre), never from the file.
PRE_TOKENIZER_NAMES = {GPT2_PATTERN: "gpt-2", GPT2_DIGITS_PATTERN: "smollm", GPT4_PATTERN: "llama-bpe"}


def _alphabet(token: bytes) -> str:
    table = byte_to_char()
    return "".join(table[b] for b in token)


def gguf_vocab(tokenizer: Tokenizer, vocab_size: int) -> tuple[list[str], list[int]]:
    """One token string and type per embedding row. Rows the tokenizer never produces (models often pad
    the vocabulary) get llama.cpp's ``[PAD<id>]`` unused tokens."""
    if tokenizer.vocab_size > vocab_size:
        raise ValueError(f"the tokenizer has {tokenizer.vocab_size} tokens but the model only {vocab_size}")
    special_by_id = {i: text for text, i in tokenizer.special_tokens.items()}
    tokens, types = [], []
    for i in range(vocab_size):
        if i in special_by_id:
            tokens.append(special_by_id[i])
            types.append(CONTROL)
        elif i in tokenizer.vocab:
            tokens.append(_alphabet(tokenizer.vocab[i]))
            types.append(NORMAL)
        else:
            tokens.append(f"[PAD{i}]")
            types.append(UNUSED)
    return tokens, types


def gguf_merges(tokenizer: Tokenizer) -> list[str]:
    """Pair merges ("left right") equivalent to Ember's rank-by-result BPE.

    Ember merges any two adjacent pieces whose concatenation is the highest-priority token, so each
    token gets a merge for every split into two BPE-reachable pieces, at the token's priority (the
    conversion transformers applies to tiktoken vocabularies). The first merge of each token keeps the
    priority order, so the importer recovers ``merge_order`` unchanged.
    """
    rank = {token: -1 for token in tokenizer.vocab.values() if len(token) == 1}
    rank.update({tokenizer.vocab[i]: r for r, i in enumerate(tokenizer.merge_order)})
    merges = []
    for token in (tokenizer.vocab[i] for i in tokenizer.merge_order):
        splits = [(token[:k], token[k:]) for k in range(1, len(token))]
        splits = sorted(
            ((left, right) for left, right in splits if left in rank and right in rank),
            key=lambda pair: (rank[pair[0]], rank[pair[1]]),
        )
        merges.extend(f"{_alphabet(left)} {_alphabet(right)}" for left, right in splits)
    return merges


def pre_tokenizer_name(tokenizer: Tokenizer) -> str:
    try:
        return PRE_TOKENIZER_NAMES[tokenizer.pattern]
    except KeyError:
        raise ValueError(
            f"tokenizer split pattern {tokenizer.pattern!r} has no llama.cpp pre-tokenizer name "
            f"(exportable: GPT-2, GPT-2 with single digits, GPT-4)"
        ) from None


def add_tokenizer(writer, tokenizer: Tokenizer, vocab_size: int) -> None:
    """Add ``tokenizer`` to a ``gguf.GGUFWriter`` for a model with ``vocab_size`` embedding rows."""
    tokens, types = gguf_vocab(tokenizer, vocab_size)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer_name(tokenizer))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(gguf_merges(tokenizer))
    for token, add in (
        (tokenizer.bos_id, writer.add_bos_token_id),
        (tokenizer.eos_id, writer.add_eos_token_id),
        (tokenizer.pad_id, writer.add_pad_token_id),
    ):
        if token is not None:
            add(token)
    # Ember never prepends BOS itself; a chat template adds any special token it needs.
    writer.add_add_bos_token(False)
    writer.add_add_space_prefix(False)
    if tokenizer.chat_template:
        writer.add_chat_template(tokenizer.chat_template)
