"""Token counting for chunk budgets: a small interface that any tokenizer can implement."""

from __future__ import annotations

import re
from typing import Protocol

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)


class TokenCounter(Protocol):
    name: str

    def count_tokens(self, text: str) -> int: ...


class RegexTokenCounter:
    """Words and single punctuation marks: a tokenizer-free stand-in close to BPE counts on English."""

    name = "regex-words"

    def count_tokens(self, text: str) -> int:
        return len(_TOKEN.findall(text))
