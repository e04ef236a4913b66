"""HF transformers + PEFT load Ember's saved adapter on SmolLM2's own weights and agree on the logits."""

import copy

import pytest
import torch

from ember.llm.inference.checkpoint import load_model
from ember.llm.training.lora import LoraSpec, attach_lora, save_adapter

PROMPT = "The capital of France is Paris, and the capital of Italy is"


@pytest.mark.slow  # loads SmolLM2 three times (Ember, HF, HF + PEFT): about 1.5 minutes on 2 shared cores
def test_peft_loads_embers_adapter_with_the_same_logits(
    smollm2_checkpoint, smollm2_tokenizer, hf_reference, tmp_path
):
    from peft import PeftModel

    special = [smollm2_tokenizer.special_tokens[t] for t in ("<|im_start|>", "<|im_end|>")]
    spec = LoraSpec(
        rank=4,
        alpha=8,
        targets=("wq", "wk", "wv", "wo", "w_gate", "w_up", "w_down"),
        token_ids=tuple(special),
    )
    model = attach_lora(load_model(smollm2_checkpoint), spec)
    generator = torch.Generator().manual_seed(0)
    for param in model.parameters():
        if param.requires_grad:
            param.data = param.data + torch.randn(param.shape, generator=generator) * 0.02
    save_adapter(model, spec, tmp_path / "adapter", base_name="smollm2-135m-instruct")

    ids = torch.tensor([smollm2_tokenizer.encode(PROMPT) + special])
    hf = PeftModel.from_pretrained(copy.deepcopy(hf_reference), tmp_path / "adapter").eval()
    with torch.inference_mode():
        ours, theirs, base = model(ids), hf(ids).logits, hf_reference(ids).logits
    assert (ours - base).abs().max().item() > 0.1  # the adapter changes the logits
    assert (ours - theirs).abs().max().item() <= 1e-3
