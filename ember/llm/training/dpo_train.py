"""DPO training: the policy learns to prefer the chosen completion over the rejected one, relative to a
frozen reference, the model as training starts (its log-probs computed once, before the first step), or
the precomputed log-probs a dataset carries."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ember.llm.inference.model import Transformer
from ember.llm.training import finetune
from ember.llm.training.dpo import completion_logps, dpo_loss
from ember.llm.training.dpo_data import Pair
from ember.llm.training.finetune import FineTuneOptions
from ember.llm.training.sft_data import Example

REFERENCE_FILE = "reference_logps.pt"


def padded(examples: list[Example], device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded (ids, mask); padding sits after every real token, so causal attention ignores it."""
    width = max(len(e.ids) for e in examples)
    ids = torch.zeros(len(examples), width, dtype=torch.long)
    mask = torch.zeros(len(examples), width, dtype=torch.long)
    for row, example in enumerate(examples):
        ids[row, : len(example.ids)] = torch.tensor(example.ids)
        mask[row, : len(example.mask)] = torch.tensor(example.mask)
    return ids.to(device), mask.to(device)


def pair_logps(
    model: Transformer, pairs: list[Pair], device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed completion log-probs (chosen, rejected) of ``pairs``, in one forward pass."""
    ids, mask = padded([p.chosen for p in pairs] + [p.rejected for p in pairs], device)
    return completion_logps(model(ids), ids, mask).chunk(2)


def reference_logps(
    model: Transformer, pairs: list[Pair], device: torch.device, batch_size: int = 4
) -> torch.Tensor:
    """(N, 2) reference log-probs: the dataset's where given, else ``model``'s as it is now."""
    model.eval()
    out = torch.zeros(len(pairs), 2)
    with torch.no_grad():
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            chosen, rejected = pair_logps(model, chunk, device)
            for offset, pair in enumerate(chunk):
                given = pair.ref_chosen is not None
                out[start + offset, 0] = pair.ref_chosen if given else chosen[offset]
                out[start + offset, 1] = pair.ref_rejected if given else rejected[offset]
    return out


def train_dpo(
    model: Transformer,
    pairs: list[Pair],
    options: FineTuneOptions,
    beta: float = 0.1,
    state_dir: Path | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """DPO on ``pairs``. The reference log-probs are kept in ``state_dir`` so a resumed run uses the
    starting model's, not the half-trained one's."""
    device = next(model.parameters()).device
    saved = Path(state_dir) / REFERENCE_FILE if state_dir else None
    if saved is not None and saved.is_file():
        reference = torch.load(saved)
    else:
        reference = reference_logps(model, pairs, device)
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            torch.save(reference, saved)
    reference = reference.to(device)

    def step_loss(indices: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        chosen, rejected = pair_logps(model, [pairs[i] for i in indices], device)
        out = dpo_loss(chosen, rejected, reference[indices, 0], reference[indices, 1], beta)
        return out.loss, out.metrics

    return finetune.run(model, len(pairs), step_loss, options, state_dir, on_step)
