"""BM25 terms: lowercase, Unicode-aware, keeps identifiers and numbers whole (not the LLM's BPE tokenizer).

"GPT-4", "50,257", "3.14e23", "v1.2.3" and "file_name.py" each stay one token, because users search
for exactly these strings and splitting them destroys lexical precision.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Grouped thousands first ("50,257"), then word runs joined by - . _ + ' (identifiers, decimals, 3.14e-23).
_TOKEN = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\w+(?:[-.+']\w+)*")

ENGLISH_STOPWORDS = frozenset(
    """a an and are as at be but by for from has have he her his i if in into is it its me my no not of on
    or our she so such than that the their them then there these they this to was we were what when where
    which who whom why will with would you your""".split()
)


@dataclass(frozen=True)
class TermSplitter:
    """Settable stemming (Snowball via PyStemmer) and stopwords; the config is saved in the index manifest."""

    stem: bool = False
    stopwords: bool = False
    language: str = "english"

    def __post_init__(self) -> None:
        if self.stem:
            import Stemmer

            object.__setattr__(self, "_stemmer", Stemmer.Stemmer(self.language))

    def __call__(self, text: str) -> list[str]:
        tokens = _TOKEN.findall(text.casefold())
        if self.stopwords:
            tokens = [t for t in tokens if t not in ENGLISH_STOPWORDS]
        if self.stem:
            tokens = self._stemmer.stemWords(tokens)  # type: ignore[attr-defined]
        return tokens

    def config(self) -> dict:
        return {"stem": self.stem, "stopwords": self.stopwords, "language": self.language}
