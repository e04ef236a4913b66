"""Training checkpoints, saved atomically: a kill at any moment leaves the previous one loadable.

``<run>/checkpoints/step_<n>/`` holds the model in the engine's own format (model.safetensors,
config.json, tokenizer.json: `ember llm generate`, the quantizer and the server load it as is),
optimizer.pt, rng.pt and state.json (step, loader cursor, metrics). A run that trains only part of the
model (LoRA adapters) saves only that part, trainable.safetensors, beside config.json: the frozen base is
reloaded by whoever resumes, and state.json's fingerprint of it refuses another base. It is written
under a temporary name, every file fsynced, then renamed; ``<run>/checkpoints/latest`` names the newest
complete one and is replaced atomically after the rename. The previous checkpoint is kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
from pathlib import Path

import numpy as np
import torch

from ember.llm.inference.checkpoint import CONFIG_FILE, WEIGHTS_FILE, save_model
from ember.llm.inference.config import ModelConfig
from ember.llm.inference.model import Transformer
from ember.llm.training.sharding import is_sharded, load_full_state

STATE_FILE, OPTIMIZER_FILE, RNG_FILE, LATEST = "state.json", "optimizer.pt", "rng.pt", "latest"
TRAINABLE_FILE = "trainable.safetensors"
BY_NAME = "by-name"  # optimizer states gathered whole and keyed by parameter name (FSDP runs)
KEEP = 2


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed: the message names it and what does not match."""


def rng_states() -> dict:
    states = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def set_rng_states(states: dict) -> None:
    torch.set_rng_state(states["torch"])
    np.random.set_state(states["numpy"])
    random.setstate(states["python"])
    if "cuda" in states and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(states["cuda"])


def save_checkpoint(
    run_dir: Path,
    step: int,
    model: Transformer,
    tokenizer,
    optimizer_states: list[dict],
    state: dict,
    before_rename=None,
) -> Path:
    """Write step ``step``'s checkpoint atomically; ``before_rename`` is a test hook (crash window).

    ``model`` holds the whole weights (gathered first when the run is sharded); ``optimizer_states`` are
    the optimizers' state dicts, or under FSDP their whole name-keyed form (``state["optimizer_layout"]``).
    """
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{step:07d}"
    partial = root / f".partial-{final.name}-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    if _trains_everything(model):
        save_model(model, partial, tokenizer)
    else:
        from safetensors.torch import save_file

        partial.mkdir()
        trainable = {name: p.detach().cpu().contiguous() for name, p in _trainable(model).items()}
        save_file(trainable, str(partial / TRAINABLE_FILE))
        model.config.save(partial / CONFIG_FILE)
        state = {**state, "frozen_fingerprint": frozen_fingerprint(model)}
    torch.save(optimizer_states, partial / OPTIMIZER_FILE)
    torch.save(rng_states(), partial / RNG_FILE)
    (partial / STATE_FILE).write_text(json.dumps({"step": step, **state}, indent=2) + "\n")
    for file in partial.iterdir():
        _fsync(file)
    _fsync(partial)
    if before_rename is not None:
        before_rename(partial)
    shutil.rmtree(final, ignore_errors=True)
    partial.rename(final)
    _fsync(root)
    pointer = root / f".{LATEST}.tmp"
    pointer.write_text(final.name + "\n")
    _fsync(pointer)
    os.replace(pointer, root / LATEST)
    _fsync(root)
    _prune(root, keep=KEEP)
    return final


def latest_checkpoint(run_dir: Path) -> Path | None:
    """The newest complete checkpoint of ``run_dir``, or None; leftovers of interrupted saves are removed."""
    root = Path(run_dir) / "checkpoints"
    for leftover in root.glob(".partial-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    directory = root / pointer.read_text().strip()
    missing = [
        f for f in (CONFIG_FILE, OPTIMIZER_FILE, RNG_FILE, STATE_FILE) if not (directory / f).is_file()
    ]
    if not (directory / WEIGHTS_FILE).is_file() and not (directory / TRAINABLE_FILE).is_file():
        missing.append(f"{WEIGHTS_FILE} or {TRAINABLE_FILE}")
    if missing:
        raise CheckpointError(f"{directory}: incomplete checkpoint, missing {', '.join(missing)}")
    return directory


def load_checkpoint(directory: Path, model: Transformer, optimizers: list[torch.optim.Optimizer]) -> dict:
    """Load weights (all, or the trainable ones), optimizer and RNG states into this run's objects;
    returns state.json."""

    saved = ModelConfig.load(directory / CONFIG_FILE)
    if saved != model.config:
        diff = {
            k: (v, getattr(model.config, k))
            for k, v in saved.to_dict().items()
            if getattr(model.config, k) != v
        }
        detail = ", ".join(f"{k} {a} there, {b} here" for k, (a, b) in diff.items())
        raise CheckpointError(
            f"{directory}: saved from another model ({detail}); resume with the same model settings"
        )
    state = json.loads((directory / STATE_FILE).read_text())
    states = torch.load(directory / OPTIMIZER_FILE, weights_only=False)
    if len(states) != len(optimizers):
        raise CheckpointError(
            f"{directory}: {len(states)} optimizers saved, here {len(optimizers)} (another --optimizer)"
        )
    initial = [[g["initial_lr"] for g in optimizer.param_groups] for optimizer in optimizers]
    if state.get("optimizer_layout") == BY_NAME:  # saved by a sharded run: spread over this run's layout
        load_full_state(model, optimizers, _weights(directory, model), states)
    elif is_sharded(model):
        raise CheckpointError(f"{directory}: saved without --fsdp; resume it without --fsdp")
    else:
        if (directory / TRAINABLE_FILE).is_file():
            _load_trainable(directory, model, state)
        else:
            _load_weights(directory, model)
        for optimizer, saved_state in zip(optimizers, states, strict=True):
            optimizer.load_state_dict(saved_state)
    for optimizer, lrs in zip(optimizers, initial, strict=True):
        for group, lr in zip(optimizer.param_groups, lrs, strict=True):
            group["initial_lr"] = lr
    set_rng_states(torch.load(directory / RNG_FILE, weights_only=False))
    return state


def frozen_fingerprint(model: torch.nn.Module) -> str:
    """A short hash of the frozen parameters' names, shapes and a few values: tells one base from another."""
    digest = hashlib.sha256()
    for name, p in model.named_parameters():
        if not p.requires_grad:
            values = p.detach().flatten()
            sample = torch.cat([values[:16], values[-16:]]).float().cpu()
            digest.update(f"{name}{tuple(p.shape)}".encode() + sample.numpy().tobytes())
    return digest.hexdigest()[:16]


def _trainable(model: torch.nn.Module) -> dict[str, torch.nn.Parameter]:
    return {name: p for name, p in model.named_parameters() if p.requires_grad}


def _trains_everything(model: torch.nn.Module) -> bool:
    return all(p.requires_grad for p in model.parameters())


def _weights(directory: Path, model: Transformer) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    if not _trains_everything(model):
        raise CheckpointError(
            f"{directory}: holds a whole model, but this run trains only some parameters (LoRA?); "
            "resume with the same settings"
        )
    weights = load_file(str(directory / WEIGHTS_FILE))
    if "lm_head.weight" not in weights and model.config.tie_embeddings:
        weights["lm_head.weight"] = weights["tok_emb.weight"]
    return weights


def _load_weights(directory: Path, model: Transformer) -> None:
    weights = _weights(directory, model)
    with torch.no_grad():
        missing = set(model.state_dict()) - set(weights)
        if missing:
            raise CheckpointError(f"{directory}: the weights lack {sorted(missing)[:3]}")
        model.load_state_dict({k: v.to(model.tok_emb.weight.device) for k, v in weights.items()}, strict=True)


def _load_trainable(directory: Path, model: Transformer, state: dict) -> None:
    from safetensors.torch import load_file

    saved, params = load_file(str(directory / TRAINABLE_FILE)), _trainable(model)
    shapes = {name: tuple(t.shape) for name, t in saved.items()}
    here = {name: tuple(p.shape) for name, p in params.items()}
    if shapes != here:
        only_there = sorted(set(shapes) - set(here))[:2]
        only_here = sorted(set(here) - set(shapes))[:2]
        other = sorted(n for n in set(shapes) & set(here) if shapes[n] != here[n])[:2]
        raise CheckpointError(
            f"{directory}: saved with other trainable parameters (only there: {only_there}, only here: "
            f"{only_here}, other shapes: {other}); resume with the same LoRA settings"
        )
    if state.get("frozen_fingerprint") != frozen_fingerprint(model):
        raise CheckpointError(
            f"{directory}: saved on other frozen weights than this model's; resume from the same base model"
        )
    with torch.no_grad():
        for name, tensor in saved.items():
            params[name].copy_(tensor)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _prune(root: Path, keep: int) -> None:
    for old in sorted(root.glob("step_*"))[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
