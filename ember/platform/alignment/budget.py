"""The `ember align rag` budget: its defaults in one place, light to import (the CLI shows them in --help)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AlignBudget:
    """Defaults sized for under 90 minutes on 2 CPU cores with SmolLM2-135M; a GPU runs them in minutes."""

    questions: int = 400
    sft_steps: int = 70
    dpo_steps: int = 26
    batch_size: int = 2
    lora_rank: int = 16
    sft_lr: float = 5e-4
    dpo_lr: float = 5e-5
    # Whose failing samples DPO rejects: "base" (the starting model's) or "sft" (on-policy, the model DPO
    # trains). On the dev set "base" gave more factoids, citations and support (docs/benchmarks.md, v6).
    rejections_from: str = "base"
    beta: float = 0.1
    seq_len: int = 3072  # an agent trace (tool schemas, two searches, an answer) needs ~2,500
    # Passages per training prompt; None: as many as a grounded answer reads (the rag_passages setting),
    # fewer where the sequence cannot hold them.
    passages: int | None = None
    # Sentences each training prompt keeps, as a grounded answer's prompt does; None: the
    # rag_focus_sentences setting (0: whole passages).
    focus_sentences: int | None = None
    heldout_share: float = 0.1
    replay_share: float = 0.08  # plain passages among the SFT rows, against drift from general text
    eval_items: int = 30
    seed: int = 0
