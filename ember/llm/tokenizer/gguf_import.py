"""Import the tokenizer stored in GGUF metadata (tokenizer.ggml.*) of byte-level BPE ("gpt2") models."""

from __future__ import annotations

from pathlib import Path

from ember.llm.tokenizer.byte_level import from_byte_level_vocab
from ember.llm.tokenizer.patterns import GPT2_PATTERN
from ember.llm.tokenizer.tokenizer import Tokenizer

CONTROL, USER_DEFINED = 3, 4  # llama.cpp token types that are matched as whole special tokens


def load_gguf_tokenizer(path: str | Path) -> Tokenizer:
    """Tokens, merges, token types, bos/eos/pad ids and the chat template from a GGUF file.

    The split pattern is GPT-2's for every ``tokenizer.ggml.pre``: that is how transformers reads these
    files (``AutoTokenizer.from_pretrained(dir, gguf_file=...)``), our parity oracle. For SmolLM2 it
    differs from the original tokenizer.json, which also splits digits one by one.
    """
    from gguf import GGUFReader

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    fields = GGUFReader(str(path)).fields

    def value(key: str, default: object = None) -> object:
        return fields[key].contents() if key in fields else default

    model = value("tokenizer.ggml.model")
    if model != "gpt2":
        raise ValueError(
            f"{path}: tokenizer.ggml.model is {model!r}; only byte-level BPE ('gpt2') is supported"
        )
    tokens: list[str] = value("tokenizer.ggml.tokens")
    types: list[int] = value("tokenizer.ggml.token_type", [1] * len(tokens))
    merges = [tuple(m.split(" ", 1)) for m in value("tokenizer.ggml.merges", [])]
    specials = {
        t: i for i, (t, kind) in enumerate(zip(tokens, types, strict=True)) if kind in (CONTROL, USER_DEFINED)
    }

    def special_name(key: str) -> str | None:
        index = value(key)
        return tokens[index] if index is not None and tokens[index] in specials else None

    return from_byte_level_vocab(
        str(path),
        GPT2_PATTERN,
        {t: i for i, t in enumerate(tokens)},
        merges,
        specials,
        chat_template=value("tokenizer.chat_template"),
        bos_token=special_name("tokenizer.ggml.bos_token_id"),
        eos_token=special_name("tokenizer.ggml.eos_token_id"),
        pad_token=special_name("tokenizer.ggml.padding_token_id"),
        name=path.stem,
    )
