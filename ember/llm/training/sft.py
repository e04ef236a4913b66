"""Supervised fine-tuning: next-token loss on the supervised (assistant) tokens of packed conversations."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F

from ember.llm.inference.model import Transformer
from ember.llm.training import finetune
from ember.llm.training.finetune import FineTuneOptions
from ember.llm.training.sft_data import Example, pack


def masked_lm_loss(logits: torch.Tensor, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy of the tokens whose mask is 1, each predicted from the position before it."""
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -100)
    return F.cross_entropy(logits[:, :-1].flatten(0, 1).float(), targets.flatten(), ignore_index=-100)


def train_sft(
    model: Transformer,
    examples: list[Example],
    seq_len: int,
    pad_id: int,
    options: FineTuneOptions,
    state_dir: Path | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` on ``examples`` packed into rows of at most ``seq_len`` tokens."""
    seq_len = min(seq_len, max(len(e.ids) for e in examples))
    rows = pack(examples, seq_len, pad_id)
    device = next(model.parameters()).device
    ids = torch.tensor([r.ids for r in rows], device=device)
    mask = torch.tensor([r.mask for r in rows], device=device)

    def step_loss(indices: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        batch_ids, batch_mask = ids[indices], mask[indices]
        loss = masked_lm_loss(model(batch_ids), batch_ids, batch_mask)
        return loss, {"loss": loss.item(), "tokens": int(batch_mask[:, 1:].sum())}

    return finetune.run(model, len(rows), step_loss, options, state_dir, on_step)
