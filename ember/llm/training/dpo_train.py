"""DPO on the training loop: the policy learns to prefer the chosen completion over the rejected one,
relative to a frozen reference, the model as training starts (its log-probs computed once, before the
first step, and kept in the run directory, so a resumed run uses the starting model's), or the
precomputed log-probs a dataset carries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ember.llm.inference.model import Transformer
from ember.llm.training.dpo import completion_logps, dpo_loss, scored_positions
from ember.llm.training.dpo_data import Pair
from ember.llm.training.item_batches import ItemBatches
from ember.llm.training.sft_data import Example
from ember.llm.training.trainer import TrainConfig, autocast
from ember.llm.training.tune import run_finetune

REFERENCE_FILE = "reference_logps.pt"


def padded(examples: list[Example], device: torch.device | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (ids, mask); padding sits after every real token, so causal attention ignores it."""
    width = max(len(e.ids) for e in examples)
    ids = torch.zeros(len(examples), width, dtype=torch.long)
    mask = torch.zeros(len(examples), width, dtype=torch.long)
    for row, example in enumerate(examples):
        ids[row, : len(example.ids)] = torch.tensor(example.ids)
        mask[row, : len(example.mask)] = torch.tensor(example.mask)
    return ids.to(device), mask.to(device)


def sequence_logps(model, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Summed log-probs (B,) of each row's supervised tokens; logits only where they are scored."""
    return completion_logps(model(ids, logits_at=scored_positions(ids, mask)), ids, mask)


def pair_logps(
    model: Transformer, pairs: list[Pair], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed completion log-probs (chosen, rejected) of ``pairs``, in one forward pass."""
    ids, mask = padded([p.chosen for p in pairs] + [p.rejected for p in pairs], device)
    return sequence_logps(model, ids, mask).chunk(2)


def reference_logps(
    model: Transformer, pairs: list[Pair], device: torch.device, batch_size: int = 4, dtype: str = "fp32"
) -> torch.Tensor:
    """(N, 2) reference log-probs: the dataset's where given, else ``model``'s as it is now, computed in
    the run's ``dtype`` (so the policy starts level with its reference)."""
    model.eval()
    out = torch.zeros(len(pairs), 2)
    with torch.no_grad(), autocast(dtype, device):
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            chosen, rejected = pair_logps(model, chunk, device)
            for offset, pair in enumerate(chunk):
                given = pair.ref_chosen is not None
                out[start + offset, 0] = pair.ref_chosen if given else chosen[offset]
                out[start + offset, 1] = pair.ref_rejected if given else rejected[offset]
    return out


def pair_batches(pairs: list[Pair], reference: torch.Tensor, size: int, seed: int) -> ItemBatches:
    """Batches of ``size`` pairs: chosen sides then rejected sides, padded, with their reference log-probs."""

    def collate(picked: list[int]) -> dict[str, torch.Tensor]:
        ids, mask = padded([pairs[i].chosen for i in picked] + [pairs[i].rejected for i in picked])
        return {"ids": ids, "mask": mask, "reference": reference[picked]}

    return ItemBatches(len(pairs), size, collate, seed)


def dpo_loss_fn(beta: float):
    """The loop's loss: the sigmoid DPO loss of a batch, with TRL's reward metrics."""

    def loss_fn(model, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        ids, mask, reference = batch["ids"], batch["mask"], batch["reference"]
        chosen, rejected = sequence_logps(model, ids, mask).chunk(2)
        out = dpo_loss(chosen, rejected, reference[:, 0], reference[:, 1], beta)
        return out.loss, {k: v for k, v in out.metrics.items() if k != "loss"}

    return loss_fn


def train_dpo(
    model: Transformer,
    tokenizer,
    pairs: list[Pair],
    config: TrainConfig,
    run_dir: Path,
    beta: float = 0.1,
    on_step: Callable[[dict], None] | None = None,
) -> list[dict]:
    """DPO on ``pairs``, ``config.micro_batch`` pairs per step; returns the step records. Resumes from
    ``run_dir``'s latest checkpoint when it has one, against the reference log-probs kept there."""
    saved = Path(run_dir) / REFERENCE_FILE
    if saved.is_file():
        reference = torch.load(saved)
    else:
        reference = reference_logps(model, pairs, next(model.parameters()).device, dtype=config.dtype)
        saved.parent.mkdir(parents=True, exist_ok=True)
        torch.save(reference, saved)
    batches = pair_batches(pairs, reference, config.micro_batch, config.seed)
    return run_finetune(model, tokenizer, config, batches, dpo_loss_fn(beta), run_dir, on_step)
