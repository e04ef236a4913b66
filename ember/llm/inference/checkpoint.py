"""Ember's checkpoint format: a directory with model.safetensors, config.json and tokenizer.json.

Quantized checkpoints carry their mode and group size in the safetensors metadata, so one loader
reads fp32, int8 and int4 directories alike.
"""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file
from torch import nn

from ember.llm.inference.config import ModelConfig
from ember.llm.inference.model import Transformer
from ember.llm.inference.quantize import Int4Linear, Int8Linear, empty_quantized, prepare_quantized

WEIGHTS_FILE, CONFIG_FILE, TOKENIZER_FILE = "model.safetensors", "config.json", "tokenizer.json"


def quantization_of(model: nn.Module) -> tuple[str | None, int]:
    for module in model.modules():
        if isinstance(module, Int8Linear):
            return "int8", 0
        if isinstance(module, Int4Linear):
            return "int4", module.group_size
    return None, 0


def save_model(model: Transformer, directory: Path, tokenizer=None) -> Path:
    """Write ``model`` (fp32 or quantized) and optionally its tokenizer into ``directory``."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    if isinstance(model.lm_head, nn.Linear) and model.lm_head.weight is model.tok_emb.weight:
        del state["lm_head.weight"]  # tied: stored once as tok_emb.weight
    mode, group_size = quantization_of(model)
    metadata = {"format": "ember", "quantization": mode or "none", "group_size": str(group_size)}
    save_file(state, str(directory / WEIGHTS_FILE), metadata=metadata)
    model.config.save(directory / CONFIG_FILE)
    if tokenizer is not None:
        tokenizer.save(directory / TOKENIZER_FILE)
    return directory


def model_from_state(
    config: ModelConfig, state: dict[str, torch.Tensor], quantization: tuple[str, int] | None = None
) -> Transformer:
    """A Transformer that takes over ``state``'s tensors (no copy); lm_head may be absent if tied."""
    with torch.device("meta"):
        model = Transformer(config)
    if quantization is not None:
        empty_quantized(model, *quantization)
    if "lm_head.weight" not in state and isinstance(model.lm_head, nn.Linear):
        state = {**state, "lm_head.weight": state["tok_emb.weight"]}
    model.load_state_dict(state, strict=True, assign=True)
    model.rope_cos, model.rope_sin = Transformer.rope_tables(config)
    if isinstance(model.lm_head, nn.Linear) and config.tie_embeddings:
        model.lm_head.weight = model.tok_emb.weight
    return model


def load_model(
    directory: Path, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32
) -> Transformer:
    """Load the checkpoint in ``directory`` for inference on ``device`` in ``dtype``."""
    directory = Path(directory)
    config = ModelConfig.load(directory / CONFIG_FILE)
    with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as handle:
        metadata = handle.metadata() or {}
    mode = metadata.get("quantization", "none")
    state = load_file(str(directory / WEIGHTS_FILE))
    model = model_from_state(config, state, None if mode == "none" else (mode, int(metadata["group_size"])))
    model = model.to(device)
    for param in model.parameters():
        if param.is_floating_point():
            param.data = param.data.to(dtype)
    prepare_quantized(model, dtype)
    return model.eval().requires_grad_(False)


def load_tokenizer(directory: Path):
    """The checkpoint's tokenizer (ember.llm.tokenizer.Tokenizer)."""
    from ember.llm.tokenizer import Tokenizer

    return Tokenizer.load(Path(directory) / TOKENIZER_FILE)


def quantize_checkpoint(
    source: Path, target: Path, mode: str, group_size: int = 32, model: Transformer | None = None
) -> Path:
    """Write an int8 or int4 copy of the fp checkpoint ``source`` (tokenizer file included); ``model`` is
    its weights when the caller built them another way (an adapter model merged onto its base)."""
    from ember.llm.inference.quantize import quantize_model

    model = model if model is not None else load_model(source)
    save_model(quantize_model(model, mode, group_size), target)
    tokenizer_file = Path(source) / TOKENIZER_FILE
    if tokenizer_file.is_file():
        (Path(target) / TOKENIZER_FILE).write_bytes(tokenizer_file.read_bytes())
    return Path(target)
