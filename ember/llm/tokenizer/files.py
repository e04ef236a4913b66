"""Open a tokenizer from any file Ember reads: a .gguf, Ember's own JSON, or an HF tokenizer.json."""

from __future__ import annotations

from pathlib import Path

from ember.llm.tokenizer.gguf_import import load_gguf_tokenizer
from ember.llm.tokenizer.hf_import import load_hf_tokenizer
from ember.llm.tokenizer.tokenizer import FORMAT, Tokenizer


def load_tokenizer_file(path: str | Path) -> Tokenizer:
    """The tokenizer in ``path``, whichever of the supported kinds it is."""
    path = Path(path)
    if path.suffix == ".gguf":
        return load_gguf_tokenizer(path)
    if not path.is_file():
        raise FileNotFoundError(f"tokenizer file not found: {path}")
    with path.open(encoding="utf-8") as handle:
        head = handle.read(200)
    return Tokenizer.load(path) if f'"format": "{FORMAT}"' in head else load_hf_tokenizer(path)
