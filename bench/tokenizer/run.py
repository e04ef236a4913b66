"""Tokenizer benchmark: training time vs HF tokenizers, encode speed vs tiktoken, compression.

    /work/venv/bin/python bench/tokenizer/run.py --train-mb 100 --vocab-size 32768

Run on the same machine, in the same run: our trainer and HF's ByteLevel BPE trainer on the same text;
single-thread encode of held-out text by our Tokenizer and by tiktoken with the same ranks; bytes per token
on held-out text for ours, HF-trained, SmolLM2 (from its GGUF) and GPT-2 (when tiktoken has it cached).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

sys.path.insert(0, str(Path(__file__).parent))
from corpus import build_corpus  # noqa: E402

from ember.llm.tokenizer import (  # noqa: E402
    DEFAULT_SPECIAL_TOKENS,
    GPT2_PATTERN,
    GPT4_PATTERN,
    Tokenizer,
    bytes_per_token,
)
from ember.llm.tokenizer.gguf_import import load_gguf_tokenizer  # noqa: E402

PATTERNS = {"gpt4": GPT4_PATTERN, "gpt2": GPT2_PATTERN}


def train_hf(texts: list[str], vocab_size: int):
    from tokenizers import Tokenizer as HFTokenizer
    from tokenizers import decoders, models, pre_tokenizers, trainers

    hf = HFTokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=DEFAULT_SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    hf.train_from_iterator(texts, trainer)
    return hf


def encode_speeds(encoders: list, texts: list[str], repeats: int) -> list[float]:
    """Best-of-``repeats`` MB/s of each encoder over all texts; the encoders take turns within each
    repeat so that load from other processes on a shared machine hits them alike."""
    size = sum(len(t.encode("utf-8")) for t in texts)
    best = [float("inf")] * len(encoders)
    for _ in range(repeats):
        for index, encode in enumerate(encoders):
            start = time.perf_counter()
            for text in texts:
                encode(text)
            best[index] = min(best[index], time.perf_counter() - start)
    return [size / seconds / 1e6 for seconds in best]


def gpt2_encoding():
    try:
        import tiktoken

        return tiktoken.get_encoding("gpt2")
    except Exception as error:  # offline machines cannot fetch GPT-2's files
        print(f"GPT-2 skipped: {type(error).__name__}", file=sys.stderr)
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train-mb", type=float, default=100.0)
    parser.add_argument("--held-out-mb", type=float, default=2.0)
    parser.add_argument("--vocab-size", type=int, default=32768)
    parser.add_argument("--workers", type=int, default=2, help="processes for our pre-token counting")
    parser.add_argument("--smollm2-gguf", type=Path, default=None, help="SmolLM2 GGUF for compression")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--pattern", choices=sorted(PATTERNS), default="gpt4", help="our split regex")
    args = parser.parse_args()
    os.environ.setdefault("RAYON_NUM_THREADS", str(args.workers))

    train, held_out = build_corpus(int(args.train_mb * 1e6), int(args.held_out_mb * 1e6))
    train_mb = sum(len(t.encode("utf-8")) for t in train) / 1e6
    held_bytes = sum(len(t.encode("utf-8")) for t in held_out)

    start = time.perf_counter()
    ours = Tokenizer.train(
        train, args.vocab_size, pattern=PATTERNS[args.pattern], workers=args.workers, progress=True
    )
    ours_train_s = time.perf_counter() - start
    start = time.perf_counter()
    hf = train_hf(train, args.vocab_size)
    hf_train_s = time.perf_counter() - start

    # the anchor is tiktoken's own Encoding over the very same ranks, called directly
    ours_mbps, raw_mbps = encode_speeds([ours.encode, ours._encoding.encode_ordinary], held_out, args.repeats)

    def bpt(count) -> float:
        return bytes_per_token(held_bytes, sum(count(t) for t in held_out))

    compression = {
        "ours (trained here)": bpt(ours.count_tokens),
        "HF tokenizers (trained here)": bpt(lambda t: len(hf.encode(t, add_special_tokens=False).ids)),
    }
    if args.smollm2_gguf:
        compression["SmolLM2-135M (49k)"] = bpt(load_gguf_tokenizer(args.smollm2_gguf).count_tokens)
    gpt2 = gpt2_encoding()
    if gpt2 is not None:
        compression["GPT-2 (50k, tiktoken)"] = bpt(lambda t: len(gpt2.encode_ordinary(t)))

    console = Console()
    title = (
        f"tokenizer bench: {train_mb:.1f} MB train, {held_bytes / 1e6:.1f} MB held out, {args.pattern} split"
    )
    table = Table(title=title)
    table.add_column("measure")
    table.add_column("ours", justify="right")
    table.add_column("anchor", justify="right")
    table.add_column("ratio", justify="right")
    table.add_row(
        f"train {args.vocab_size} vocab (s)",
        f"{ours_train_s:.1f}",
        f"{hf_train_s:.1f} (HF)",
        f"{ours_train_s / hf_train_s:.2f}x time",
    )
    table.add_row(
        "encode 1 thread (MB/s)",
        f"{ours_mbps:.2f}",
        f"{raw_mbps:.2f} (tiktoken)",
        f"{ours_mbps / raw_mbps:.2f}x",
    )
    hf_bpt = compression["HF tokenizers (trained here)"]
    for name, value in compression.items():
        table.add_row(f"bytes/token: {name}", f"{value:.3f}", f"{hf_bpt:.3f} (HF)", f"{value / hf_bpt:.3f}")
    console.print(table)


if __name__ == "__main__":
    main()
