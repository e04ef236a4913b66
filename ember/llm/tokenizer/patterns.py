"""Pre-tokenization regexes: text is split into pieces first, and BPE merges never cross a piece."""

from __future__ import annotations

# cl100k (GPT-4) split: contractions, letter runs with one leading non-letter, up to 3 digits,
# punctuation runs with trailing newlines, and whitespace that leaves one space for the next word.
GPT4_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]++[\r\n]*"""
    r"""|\s*[\r\n]|\s+(?!\S)|\s+"""
)

# GPT-2's split, also the default of HF's ByteLevel pre-tokenizer (use_regex=True).
GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""

# HF's Digits(individual_digits=True) followed by ByteLevel, as one regex: every digit stands alone and
# a digit ends a whitespace run the way the end of text does (HF splits there before ByteLevel runs).
GPT2_DIGITS_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+|\s+(?![^\s\p{N}])|\s+"""
