"""LoRA on tiny random models: merged = unmerged, PEFT-format round trip, the wrong base refused."""

import json

import pytest
import torch

from ember.llm.inference.checkpoint import load_model, save_model
from ember.llm.inference.model import Transformer
from ember.llm.training.lora import (
    ADAPTER_CONFIG,
    LoraSpec,
    attach_lora,
    load_adapter,
    merge_lora,
    save_adapter,
)


@pytest.fixture
def tiny_model(make_tiny_config):
    def make(seed: int, tie: bool) -> Transformer:
        torch.manual_seed(seed)
        return Transformer(make_tiny_config(96, ffn_dim=48, max_seq_len=32, tie_embeddings=tie)).eval()

    return make


def randomize_adapter(model: Transformer, seed: int = 1) -> None:
    """Adapters start as the identity (B = 0, rows = originals); give them weights that change logits."""
    generator = torch.Generator().manual_seed(seed)
    for param in model.parameters():
        if param.requires_grad:
            param.data = torch.randn(param.shape, generator=generator) * 0.2


TOKENS = torch.tensor([[3, 5, 7, 90, 2, 11, 40, 1], [9, 8, 7, 6, 5, 4, 3, 2]])
SPEC = LoraSpec(rank=4, alpha=8, targets=("wq", "wv", "wo", "w_up", "w_down"), token_ids=(2, 90))


@pytest.mark.parametrize("tie", [True, False])
def test_merged_logits_equal_base_plus_adapter(tie, tiny_model):
    model = attach_lora(tiny_model(0, tie), SPEC)
    randomize_adapter(model)
    with torch.no_grad():
        base_logits = tiny_model(0, tie)(TOKENS)
        adapted = model(TOKENS)
        merged = merge_lora(model)(TOKENS)
    assert (adapted - base_logits).abs().max() > 1e-2  # the adapter does something
    assert (merged - adapted).abs().max() <= 1e-4
    assert set(model.state_dict()) == set(tiny_model(0, tie).state_dict())


def test_only_adapter_parameters_train(tiny_model):
    model = attach_lora(tiny_model(0, True), SPEC)
    trainable = {name for name, p in model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in name or name == "tok_emb.rows" for name in trainable)
    assert "tok_emb.rows" in trainable
    assert len([n for n in trainable if n.endswith("lora_A")]) == 2 * len(SPEC.targets)


def test_saved_adapter_reloads_and_merged_model_saves_as_a_checkpoint(tmp_path, tiny_model):
    model = attach_lora(tiny_model(0, True), SPEC)
    randomize_adapter(model)
    save_adapter(model, SPEC, tmp_path / "adapter", base_name="tiny")
    config = json.loads((tmp_path / "adapter" / ADAPTER_CONFIG).read_text())
    assert config["peft_type"] == "LORA" and config["r"] == 4 and config["trainable_token_indices"] == [2, 90]
    assert config["target_modules"] == ["down_proj", "o_proj", "q_proj", "up_proj", "v_proj"]
    reloaded = load_adapter(tiny_model(0, True), tmp_path / "adapter", "tiny")
    with torch.no_grad():
        assert torch.equal(reloaded(TOKENS), model(TOKENS))
        save_model(merge_lora(reloaded), tmp_path / "merged")
        assert (load_model(tmp_path / "merged")(TOKENS) - model(TOKENS)).abs().max() <= 1e-4


def test_an_adapter_for_another_base_is_refused_naming_both_models(tmp_path, tiny_model):
    model = attach_lora(tiny_model(0, True), SPEC)
    save_adapter(model, SPEC, tmp_path / "adapter", base_name="tiny-a")
    with pytest.raises(ValueError, match="trained on the model 'tiny-a', not on 'tiny-b'"):
        load_adapter(tiny_model(7, True), tmp_path / "adapter", "tiny-b")


def test_bad_specs_are_refused(tiny_model):
    with pytest.raises(ValueError, match="targets"):
        LoraSpec(targets=("q_proj",))
    with pytest.raises(ValueError, match="outside the vocabulary"):
        attach_lora(tiny_model(0, True), LoraSpec(token_ids=(500,)))
