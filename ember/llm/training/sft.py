"""Supervised fine-tuning on the training loop: next-token loss on the supervised (assistant) tokens of
packed conversations; every other target is -1 and gets no logits at all."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import torch
import torch.nn.functional as F

from ember.llm.inference.model import Transformer
from ember.llm.training.item_batches import ItemBatches
from ember.llm.training.sft_data import Example, pack
from ember.llm.training.trainer import TrainConfig
from ember.llm.training.tune import run_finetune


def pad_id(tokenizer) -> int:
    return tokenizer.pad_id if tokenizer.pad_id is not None else (tokenizer.eos_id or 0)


def row_batches(rows: list[Example], size: int, seed: int) -> ItemBatches:
    """(inputs, targets) of ``size`` packed rows per batch; targets are -1 where the loss mask is 0."""
    ids = torch.tensor([r.ids for r in rows])
    mask = torch.tensor([r.mask for r in rows])
    targets = ids[:, 1:].masked_fill(mask[:, 1:] == 0, -1)
    return ItemBatches(len(rows), size, lambda picked: (ids[picked, :-1], targets[picked]), seed)


def sft_loss(model, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
    """``next_token_loss``, with logits computed only where a target is supervised."""
    inputs, targets = batch
    supervised = targets >= 0
    loss = F.cross_entropy(model(inputs, logits_at=supervised).float(), targets[supervised])
    return loss, {"supervised_tokens": int(supervised.sum())}


def train_sft(
    model: Transformer,
    tokenizer,
    examples: list[Example],
    config: TrainConfig,
    run_dir: Path,
    on_step: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train ``model`` on ``examples`` packed into rows of at most ``config.seq_len`` tokens; returns the
    step records. Resumes from ``run_dir``'s latest checkpoint when it has one."""
    seq_len = min(config.seq_len, max(len(e.ids) for e in examples))  # no row longer than the data needs
    config = replace(config, seq_len=seq_len, batch_tokens=config.batch_tokens // config.seq_len * seq_len)
    batches = row_batches(pack(examples, seq_len, pad_id(tokenizer)), config.micro_batch, config.seed)
    return run_finetune(model, tokenizer, config, batches, sft_loss, run_dir, on_step)
