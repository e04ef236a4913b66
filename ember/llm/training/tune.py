"""The model a fine-tuning run starts from: an installed checkpoint, with fresh LoRA adapters or all weights
trainable, or an installed adapter model whose adapter trains on."""

from __future__ import annotations

from pathlib import Path

import torch

from ember.llm.inference.checkpoint import load_model, load_tokenizer, quantization_of
from ember.llm.inference.model import Transformer
from ember.llm.training.lora import LoraSpec, attach_lora, load_adapter, read_adapter_spec
from ember.llm.training.tuned_models import base_of, is_adapter_model


def starting_model(
    directory: Path, spec: LoraSpec | None
) -> tuple[Transformer, object, LoraSpec | None, Path]:
    """(model, tokenizer, LoRA spec or None, the full checkpoint it builds on) for a run from ``directory``.

    An adapter model keeps training its own adapter (``spec`` is then the adapter's). Fp32, on the GPU when
    there is one."""
    directory = Path(directory)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if is_adapter_model(directory):
        root = base_of(directory)
        model = load_adapter(load_model(root, device=device), directory, root.name)
        return model, load_tokenizer(directory), read_adapter_spec(directory), root
    model = load_model(directory, device=device)
    if quantization_of(model)[0]:
        raise ValueError(
            f"{directory.name!r} is quantized: fine-tune its full-precision model, then quantize"
        )
    if spec is not None:
        attach_lora(model, spec)
    else:
        model.requires_grad_(True)
    return model, load_tokenizer(directory), spec, directory
