"""Token counting for chunk budgets: a small interface that any tokenizer can implement."""

from __future__ import annotations

import re
from pathlib import Path
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
    additive = True  # the count of joined paragraphs is exactly the sum of their counts

    def count_tokens(self, text: str) -> int:
        return _TOKEN.subn("", text)[1]  # subn counts without building a list of matches


class TokenizerCounter:
    """Counts with a BPE tokenizer file (ours, an HF tokenizer.json, or a GGUF) so that chunk budgets are
    in the tokens of the model that will read them. Pickles as its path, so worker processes load their own.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise ValueError(f"tokenizer file {self.path} does not exist")
        self.name = f"bpe:{self.path.name}"
        self.additive = False  # merges across a join can change a count by a token or two
        self._tokenizer = None

    def count_tokens(self, text: str) -> int:
        if self._tokenizer is None:
            from ember.llm.tokenizer.files import load_tokenizer_file

            self._tokenizer = load_tokenizer_file(self.path)
        return self._tokenizer.count_tokens(text)

    def __getstate__(self) -> dict:
        return {"path": self.path, "name": self.name, "_tokenizer": None}


def token_counter_for(spec: str, models_dir: Path) -> TokenCounter:
    """``words`` (default), a tokenizer file, or an installed model name (its tokenizer is used)."""
    if spec in ("", "words"):
        return RegexTokenCounter()
    path = Path(spec).expanduser()
    if path.is_file():
        return TokenizerCounter(path)
    from ember.llm.imports.registry import resolve_model  # loads torch: only for model names
    from ember.llm.inference.checkpoint import TOKENIZER_FILE

    try:
        return TokenizerCounter(resolve_model(spec, models_dir) / TOKENIZER_FILE)
    except FileNotFoundError as error:
        raise ValueError(f"chunk tokenizer {spec!r} is not a tokenizer file; {error}") from error
