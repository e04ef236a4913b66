"""A tiny tokenizer and model, so training tests run in seconds on a CPU."""

import pytest
import torch

from ember.llm.inference.config import ModelConfig
from ember.llm.tokenizer import Tokenizer

TEXT = (
    "The quick brown fox jumps over the lazy dog. Training a language model is mostly arithmetic. "
    "def add(a, b):\n    return a + b\n\nPython's documentation explains every module in the library. "
) * 4


@pytest.fixture(scope="session")
def tiny_tokenizer() -> Tokenizer:
    return Tokenizer.train([TEXT], vocab_size=320)


TINY = dict(d_model=32, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=64, max_seq_len=64, tie_embeddings=False)


@pytest.fixture
def make_tiny_config():
    """The tiny shape for any tokenizer's vocabulary, with ``changes`` (max_seq_len, tie_embeddings...)."""

    def make(vocab_size: int, **changes) -> ModelConfig:
        return ModelConfig(**{**TINY, "vocab_size": vocab_size, **changes})

    return make


@pytest.fixture
def tiny_config(tiny_tokenizer, make_tiny_config) -> ModelConfig:
    return make_tiny_config(tiny_tokenizer.vocab_size)


@pytest.fixture
def documents() -> list[str]:
    """Forty short documents of different lengths."""
    words = TEXT.split()
    return [" ".join(words[i % 7 : i % 7 + 3 + (i * 5) % 23]) for i in range(40)]


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
