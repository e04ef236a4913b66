"""A tuned model installs as an adapter (the engine loads base + adapter by name) or merged (quantizable)."""

import shutil

import pytest
import torch

from ember.evals.llm_suite_model import load_scored_model
from ember.llm.imports.registry import model_info, quantize_installed, resolve_model
from ember.llm.inference.checkpoint import load_model, save_model
from ember.llm.inference.engine import Engine
from ember.llm.inference.model import Transformer
from ember.llm.tokenizer import Tokenizer
from ember.llm.training.lora import LoraSpec, attach_lora
from ember.llm.training.tuned_models import install_tuned


@pytest.fixture
def installed(tmp_path, make_tiny_config):
    """A models directory with a tiny base, and an adapted copy of it with a non-trivial adapter."""
    tokenizer = Tokenizer.train(["the cat sat on the mat"] * 3, vocab_size=290)
    torch.manual_seed(0)
    config = make_tiny_config(tokenizer.vocab_size, tie_embeddings=True)
    models = tmp_path / "models"
    save_model(Transformer(config), models / "tiny-base", tokenizer)
    model = attach_lora(
        load_model(models / "tiny-base").requires_grad_(True), LoraSpec(rank=4, token_ids=(3,))
    )
    for param in model.parameters():
        if param.requires_grad:
            param.data = torch.randn_like(param) * 0.1
    return models, model, tokenizer


IDS = torch.tensor([[1, 3, 5, 7, 9, 11]])


def test_the_engine_loads_an_adapter_model_as_base_plus_adapter(installed):
    models, model, tokenizer = installed
    with torch.no_grad():
        expected = model(IDS)
    install_tuned(
        model, tokenizer, models / "tiny-tuned", models / "tiny-base", LoraSpec(rank=4, token_ids=(3,))
    )
    directory = resolve_model("tiny-tuned", models)
    assert model_info(directory)["quantization"] == "lora adapter"
    engine = Engine.load(directory, device="cpu")
    with torch.no_grad():
        assert (engine.model(IDS) - expected).abs().max() <= 1e-4
    shutil.rmtree(models / "tiny-base")
    with pytest.raises(FileNotFoundError, match="'tiny-tuned' needs its base model 'tiny-base'"):
        Engine.load(directory, device="cpu")


def test_a_merged_model_is_an_ordinary_checkpoint_that_quantizes(installed):
    models, model, tokenizer = installed
    with torch.no_grad():
        expected = model(IDS)
    install_tuned(
        model, tokenizer, models / "tiny-merged", models / "tiny-base", LoraSpec(rank=4), merge=True
    )
    with torch.no_grad():
        assert (load_model(models / "tiny-merged")(IDS) - expected).abs().max() <= 1e-4
    quantized = quantize_installed("tiny-merged", "int8", models)
    assert model_info(quantized)["quantization"] == "int8"


def test_an_adapter_model_quantizes_as_base_plus_adapter(installed):
    models, model, tokenizer = installed
    spec = LoraSpec(rank=4, token_ids=(3,))
    install_tuned(model, tokenizer, models / "tiny-tuned", models / "tiny-base", spec)
    quantized = quantize_installed("tiny-tuned", "int8", models)
    assert quantized.name == "tiny-tuned-int8" and model_info(quantized)["quantization"] == "int8"
    with torch.no_grad():
        tuned, base = model(IDS), load_model(models / "tiny-base")(IDS)
        int8 = load_model(quantized)(IDS)
    # int8 keeps the adapter's change: far closer to the tuned logits than to the base's
    assert (int8 - tuned).abs().max() < 0.1 * (tuned - base).abs().max()


def test_the_llm_suite_scores_an_adapter_model_as_base_plus_adapter(installed):
    models, model, tokenizer = installed
    install_tuned(
        model, tokenizer, models / "tiny-tuned", models / "tiny-base", LoraSpec(rank=4, token_ids=(3,))
    )
    scored = load_scored_model(models / "tiny-tuned")
    assert scored.quantization == "none"
    with torch.no_grad():
        assert (scored.model(IDS) - model(IDS)).abs().max() <= 1e-4
