from pathlib import Path

import pytest
import torch

from ember.llm.imports.importers import import_gguf
from ember.llm.inference.checkpoint import load_model, load_tokenizer
from ember.llm.inference.model import Transformer


@pytest.fixture(scope="session")
def smollm2_checkpoint(smollm2_gguf: Path, tmp_path_factory) -> Path:
    """SmolLM2-135M-Instruct converted from GGUF into an Ember checkpoint directory."""
    return import_gguf(smollm2_gguf, tmp_path_factory.mktemp("smollm2"))


@pytest.fixture(scope="session")
def smollm2(smollm2_checkpoint: Path) -> Transformer:
    return load_model(smollm2_checkpoint)


@pytest.fixture(scope="session")
def smollm2_tokenizer(smollm2_checkpoint: Path):
    return load_tokenizer(smollm2_checkpoint)


@pytest.fixture(scope="session")
def hf_reference(smollm2_gguf: Path):
    """The oracle: HF transformers loading the same GGUF with fp32 weights."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        smollm2_gguf.parent, gguf_file=smollm2_gguf.name, dtype=torch.float32
    )
    return model.eval()
