"""Ember's byte-level BPE tokenizer: training, exact fast encoding, chat rendering, HF/GGUF import."""

from ember.llm.tokenizer.chat import DEFAULT_SPECIAL_TOKENS
from ember.llm.tokenizer.metrics import bytes_per_token
from ember.llm.tokenizer.patterns import GPT2_PATTERN, GPT4_PATTERN
from ember.llm.tokenizer.stream import StreamDecoder
from ember.llm.tokenizer.tokenizer import Tokenizer
from ember.llm.tokenizer.train import count_pretokens, train_merges

train_bpe = Tokenizer.train

__all__ = [
    "DEFAULT_SPECIAL_TOKENS",
    "GPT2_PATTERN",
    "GPT4_PATTERN",
    "StreamDecoder",
    "Tokenizer",
    "bytes_per_token",
    "count_pretokens",
    "train_bpe",
    "train_merges",
]
