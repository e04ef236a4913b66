"""Tokenize documents into train/val token shards; the val split is held out by whole document."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Iterable
from pathlib import Path

from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

from ember.llm.training.shards import ShardWriter, token_dtype, write_index


def is_validation(name: str, val_fraction: float, seed: int) -> bool:
    """Whether the document ``name`` is held out: a stable hash, so reruns split the same way."""
    digest = hashlib.sha256(f"{seed}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < val_fraction


def separator_id(tokenizer) -> int:
    """The token that starts every document: BOS, else EOS."""
    token = tokenizer.bos_id if tokenizer.bos_id is not None else tokenizer.eos_id
    if token is None:
        raise ValueError("the tokenizer has neither a BOS nor an EOS token to separate documents")
    return token


def prepare(
    documents: Iterable[tuple[str, str]],
    tokenizer,
    out: Path,
    val_fraction: float = 0.05,
    seed: int = 0,
    shard_tokens: int = 1 << 26,
    show_progress: bool = True,
) -> dict:
    """Write ``documents`` as shards under ``out`` and return the index (also written as index.json)."""
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1, got {val_fraction}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    bos, dtype = separator_id(tokenizer), token_dtype(tokenizer.vocab_size)
    writers = {split: ShardWriter(out, split, dtype, shard_tokens) for split in ("train", "val")}
    counts = {"documents": 0, "bytes": 0, "tokens": 0}
    started = time.perf_counter()
    with Progress(
        TextColumn("tokenizing"),
        BarColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        disable=not show_progress,
    ) as progress:
        task = progress.add_task("", total=None, status="")
        for name, text in documents:
            ids = [bos, *tokenizer.encode(text)]
            writers["val" if is_validation(name, val_fraction, seed) else "train"].add(ids)
            counts["documents"] += 1
            counts["bytes"] += len(text.encode("utf-8"))
            counts["tokens"] += len(ids)
            rate = counts["bytes"] / max(time.perf_counter() - started, 1e-9) / 1e6
            progress.update(
                task,
                advance=1,
                status=f"{counts['documents']} docs, {counts['tokens']:,} tokens, {rate:.1f} MB/s",
            )
    splits = {split: writer.close() for split, writer in writers.items()}
    if counts["documents"] == 0:
        raise ValueError("no documents to prepare")
    for split in ("train", "val"):
        if not splits[split]:
            raise ValueError(
                f"the {split} split is empty ({counts['documents']} documents, val_fraction {val_fraction}): "
                "give more documents or change --val-fraction"
            )
    index = {
        "dtype": dtype.name,
        "bos_id": bos,
        "vocab_size": tokenizer.vocab_size,
        "val_fraction": val_fraction,
        "seed": seed,
        **counts,
        "splits": splits,
    }
    write_index(out, index)
    tokenizer.save(out / "tokenizer.json")
    return index
