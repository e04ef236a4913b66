"""Installing a fine-tuned model, and loading an installed adapter on top of its base.

A LoRA run is installed either merged (an ordinary Ember checkpoint, quantizable like any model) or as an
adapter model: a directory with the PEFT adapter, ``ember_adapter.json`` naming the base, and the base's
``config.json`` and ``tokenizer.json``. The engine loads an adapter model by loading the base installed
beside it and merging the adapter in, so a ``model`` name picks base + adapter.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import torch

from ember.llm.inference.checkpoint import (
    CONFIG_FILE,
    WEIGHTS_FILE,
    load_model,
    quantization_of,
    save_model,
)
from ember.llm.inference.model import Transformer
from ember.llm.training.lora import (
    ADAPTER_CONFIG,
    LoraSpec,
    adapter_base,
    load_adapter,
    merge_lora,
    save_adapter,
)


def is_adapter_model(directory: Path) -> bool:
    directory = Path(directory)
    return (directory / ADAPTER_CONFIG).is_file() and not (directory / WEIGHTS_FILE).is_file()


def base_of(directory: Path) -> Path:
    """The installed base model of the adapter model in ``directory`` (looked up beside it)."""
    directory = Path(directory)
    name = adapter_base(directory).get("base_model")
    if not name:
        raise ValueError(f"{directory} does not name its base model ({directory / 'ember_adapter.json'})")
    for candidate in (directory.parent / name, Path(name)):
        if (candidate / WEIGHTS_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"the adapter model {directory.name!r} needs its base model {name!r}, not installed"
    )


def load_adapter_model(
    directory: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Transformer:
    """Base + adapter, merged, ready for inference like ``checkpoint.load_model``."""
    base = base_of(directory)
    model = load_model(base)
    if quantization_of(model)[0]:
        raise ValueError(
            f"the base {base.name!r} of {Path(directory).name!r} is quantized: LoRA needs fp weights"
        )
    model = merge_lora(load_adapter(model, directory, base.name)).to(device)
    for param in model.parameters():
        param.data = param.data.to(dtype)
    return model.eval().requires_grad_(False)


def load_installed(
    directory: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Transformer:
    """Any installed model: a checkpoint as stored, or an adapter model merged onto its base."""
    if is_adapter_model(directory):
        return load_adapter_model(directory, device=device, dtype=dtype)
    return load_model(directory, device=device, dtype=dtype)


def install_tuned(
    model: Transformer,
    tokenizer,
    target: Path,
    base_dir: Path,
    spec: LoraSpec | None,
    merge: bool = False,
) -> Path:
    """Install ``model`` (tuned from the base at ``base_dir``) at ``target``: the adapter alone when it
    carries LoRA and ``merge`` is off, else a full checkpoint. Built beside ``target``, then moved in."""
    target = Path(target)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    if spec is not None and not merge:
        save_adapter(model, spec, partial, Path(base_dir).name)
        shutil.copyfile(Path(base_dir) / CONFIG_FILE, partial / CONFIG_FILE)
        tokenizer.save(partial / "tokenizer.json")
    else:
        if spec is not None:
            merge_lora(model)
        save_model(model.requires_grad_(False), partial, tokenizer)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target
