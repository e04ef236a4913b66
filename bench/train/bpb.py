"""Bits per byte of installed models on a text file (the one definition, ember.llm.inference.evaluate):
before/after continued pretraining, and on unrelated text to see forgetting.

    python bench/train/bpb.py unrelated.txt smollm2-135m-instruct smollm2-135m-corpus
"""

from __future__ import annotations

import sys
from pathlib import Path

from ember.llm.imports.registry import resolve_model
from ember.llm.inference.checkpoint import load_model, load_tokenizer
from ember.llm.inference.evaluate import bits_per_byte
from ember.platform.settings import get_settings

if __name__ == "__main__":
    text = Path(sys.argv[1]).read_text()
    for name in sys.argv[2:]:
        directory = resolve_model(name, get_settings().models_dir)
        print(f"{name}: {bits_per_byte(load_model(directory), load_tokenizer(directory), text):.4f} bpb")
