"""Baselines for a run's val bits-per-byte, on exactly the text the run scores (the first N val tokens):
a unigram model over the run's tokenizer (token frequencies of the train split, add-half smoothing) and
gzip -9. With --model, the trained model's bpb on the same text too.

    python bench/train/baselines.py /tmp/t13/pydocs --val-tokens 16384 --model pydocs-scratch
"""

from __future__ import annotations

import argparse
import gzip
import math
from pathlib import Path

import numpy as np
import torch

from ember.llm.inference.evaluate import token_byte_lengths
from ember.llm.tokenizer import Tokenizer
from ember.llm.training.shards import open_split


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--val-tokens", type=int, default=16384)
    parser.add_argument("--model", help="installed model name or checkpoint directory")
    args = parser.parse_args()

    tokenizer = Tokenizer.load(args.data / "tokenizer.json")
    lengths = token_byte_lengths(tokenizer).numpy()
    stream = np.concatenate([s.tokens for s in open_split(args.data, "val")])[: args.val_tokens + 1]
    targets = stream[1:].astype(np.int64)
    scored = lengths[targets] > 0
    text_bytes = int(lengths[targets].sum())

    counts = np.zeros(tokenizer.vocab_size)
    for shard in open_split(args.data, "train"):
        counts += np.bincount(shard.tokens, minlength=tokenizer.vocab_size)
    ordinary = lengths > 0
    probs = np.where(ordinary, counts + 0.5, 0.0)
    probs /= probs.sum()
    unigram = -np.log(probs[targets[scored]]).sum() / math.log(2) / text_bytes

    raw = tokenizer.decode_bytes([int(t) for t in targets[scored]])
    assert len(raw) == text_bytes
    gzip_bpb = 8 * len(gzip.compress(raw, compresslevel=9)) / len(raw)
    print(f"val text: {args.val_tokens} tokens, {text_bytes} bytes")
    print(f"unigram (train frequencies over the tokenizer): {unigram:.4f} bpb")
    print(f"gzip -9: {gzip_bpb:.4f} bpb")
    if args.model:
        from ember.llm.imports.registry import resolve_model
        from ember.llm.inference.checkpoint import load_model
        from ember.llm.inference.evaluate import batch_nats_and_bytes
        from ember.platform.settings import get_settings

        model = load_model(resolve_model(args.model, get_settings().models_dir))
        nats = bytes_ = 0.0
        seq = 128
        ids = torch.from_numpy(stream.astype(np.int64))
        for start in range(0, len(ids) - 1, seq):
            chunk = ids[start : start + seq + 1]
            n, b = batch_nats_and_bytes(model, chunk[None, :-1], chunk[None, 1:], torch.from_numpy(lengths))
            nats, bytes_ = nats + n.item(), bytes_ + b.item()
        print(f"model {args.model} (windows of {seq}): {nats / math.log(2) / bytes_:.4f} bpb")


if __name__ == "__main__":
    main()
