"""The model an LLM eval scores: an installed model (an adapter model merged onto its base), as stored or
quantized in memory to int8 / int4."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ember.llm.inference.checkpoint import load_tokenizer, quantization_of
from ember.llm.inference.model import Transformer
from ember.llm.inference.quantize import prepare_quantized, quantize_model
from ember.llm.training.tuned_models import load_installed
from ember.platform.errors import InvalidInputError

QUANTIZATIONS = ("none", "int8", "int4")


@dataclass
class ScoredModel:
    name: str
    path: Path
    quantization: str  # "none", "int8" or "int4": what the scored layers are
    model: Transformer
    tokenizer: object  # ember.llm.tokenizer.Tokenizer

    @property
    def scores_by_steps(self) -> bool:
        """Quantized layers are scored through the decode path, as generation computes them."""
        return self.quantization != "none"


def load_scored_model(path: Path, quantize: str | None = None) -> ScoredModel:
    """The checkpoint at ``path``; ``quantize`` None keeps it as stored, "int8"/"int4" quantize an fp one.

    A stored quantized checkpoint cannot be scored in another precision: its fp weights are gone.
    """
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise InvalidInputError(f"--quantize must be one of {', '.join(QUANTIZATIONS)}, got {quantize!r}")
    model = load_installed(path)
    stored = quantization_of(model)[0] or "none"
    wanted = quantize or stored
    if wanted != stored:
        if stored != "none":
            raise InvalidInputError(
                f"model {path.name} is stored as {stored}; it can be scored only as {stored}, not {wanted}"
            )
        quantize_model(model, wanted)
        prepare_quantized(model, torch.float32)  # load_model's dtype: pick the compute dtype and kernels
    return ScoredModel(path.name, path, wanted, model, load_tokenizer(path))
