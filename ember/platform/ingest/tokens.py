"""Token counting for chunk budgets: a small interface that any tokenizer can implement."""

from __future__ import annotations

import re
from typing import Protocol

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class TokenCounter(Protocol):
    """Counts tokens. The chunker adds the counts of paragraphs joined by blank lines, so a counter
    should be (close to) additive over whitespace-separated pieces, as word-level and BPE counts are."""

    name: str

    def count_tokens(self, text: str) -> int: ...


class RegexTokenCounter:
    """Words and single punctuation marks: a tokenizer-free stand-in close to BPE counts on English."""

    name = "regex-words"

    def count_tokens(self, text: str) -> int:
        return _TOKEN.subn("", text)[1]  # subn counts without building a list of matches
