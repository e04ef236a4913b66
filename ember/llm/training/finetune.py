"""A small fine-tuning loop shared by SFT and DPO, until the training core's loop (issue #13) takes over.

AdamW over the trainable parameters (the adapters with LoRA, everything without), linear warmup then
cosine decay, gradient clipping. The batch of step s is a pure function of (seed, s), and the state saved
every ``save_every`` steps holds the trainable weights, the optimizer, the step and the RNG, so a run
resumed from it continues exactly as an uninterrupted one.
"""

from __future__ import annotations

import math
import os
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

STATE_FILE = "finetune_state.pt"


@dataclass
class FineTuneOptions:
    steps: int = 100
    batch_size: int = 4
    lr: float = 2e-4
    warmup: int = 5
    weight_decay: float = 0.0
    grad_clip: float = 1.0
    seed: int = 0
    save_every: int = 50


def learning_rate(options: FineTuneOptions, step: int) -> float:
    if step < options.warmup:
        return options.lr * (step + 1) / options.warmup
    progress = (step - options.warmup) / max(1, options.steps - options.warmup)
    return options.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress))))


def batch_indices(count: int, options: FineTuneOptions, step: int) -> list[int]:
    """Indices of the step's items: epochs of a seeded shuffle, walked in order."""
    start = step * options.batch_size
    indices = []
    for position in range(start, start + options.batch_size):
        epoch, offset = divmod(position, count)
        order = list(range(count))
        random.Random(options.seed * 1_000_003 + epoch).shuffle(order)
        indices.append(order[offset])
    return indices


def trainable(model: nn.Module) -> dict[str, nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def run(
    model: nn.Module,
    count: int,
    step_loss: Callable[[list[int]], tuple[torch.Tensor, dict[str, float]]],
    options: FineTuneOptions,
    state_dir: Path | None = None,
    on_step: Callable[[int, dict[str, float]], None] | None = None,
) -> list[dict[str, float]]:
    """Train ``model`` for ``options.steps`` steps; ``step_loss(indices)`` gives the loss of the items at
    ``indices`` (of ``count``) and metrics to log. Resumes from ``state_dir`` when it holds a state."""
    params = trainable(model)
    if not params:
        raise ValueError("the model has no trainable parameters")
    optimizer = torch.optim.AdamW(params.values(), lr=options.lr, weight_decay=options.weight_decay)
    torch.manual_seed(options.seed)
    history: list[dict[str, float]] = []
    start = 0
    state_path = Path(state_dir) / STATE_FILE if state_dir else None
    if state_path is not None and state_path.is_file():
        start, history = _load_state(state_path, params, optimizer)
    model.train()
    for step in range(start, options.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(options, step)
        loss, metrics = step_loss(batch_indices(count, options, step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(list(params.values()), options.grad_clip)
        optimizer.step()
        metrics = {
            "step": step + 1,
            **metrics,
            "lr": optimizer.param_groups[0]["lr"],
            "grad_norm": norm.item(),
        }
        history.append(metrics)
        if on_step is not None:
            on_step(step + 1, metrics)
        if state_path is not None and ((step + 1) % options.save_every == 0 or step + 1 == options.steps):
            _save_state(state_path, step + 1, history, params, optimizer)
    model.eval()
    return history


def _save_state(path: Path, step: int, history, params: dict[str, nn.Parameter], optimizer) -> None:
    """Written to a temporary file and renamed: a crash mid-save leaves the previous state."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "step": step,
        "history": history,
        "params": {name: p.detach().cpu() for name, p in params.items()},
        "optimizer": optimizer.state_dict(),
        "rng": torch.get_rng_state(),
    }
    partial = path.with_suffix(".partial")
    torch.save(state, partial)
    os.replace(partial, path)


def _load_state(path: Path, params: dict[str, nn.Parameter], optimizer) -> tuple[int, list]:
    state = torch.load(path, weights_only=False)
    if set(state["params"]) != set(params):
        raise ValueError(f"{path} was saved by a run with other trainable parameters: cannot resume it")
    with torch.no_grad():
        for name, tensor in state["params"].items():
            params[name].copy_(tensor)
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"])
    return state["step"], state["history"]
