"""The training loss and gradients equal HF LlamaForCausalLM's on SmolLM2-135M's real weights."""

import pytest
import torch

from ember.llm.training.models import installed_model
from ember.llm.training.trainer import next_token_loss

TEXT = (
    "Gradient descent moves the weights a small step against the gradient of the loss. In a language "
    "model the loss is the cross-entropy of the next token, averaged over every position of the batch."
)
HF_NAMES = {
    "attn.wq": "self_attn.q_proj",
    "attn.wk": "self_attn.k_proj",
    "attn.wv": "self_attn.v_proj",
    "attn.wo": "self_attn.o_proj",
    "ffn.w_gate": "mlp.gate_proj",
    "ffn.w_up": "mlp.up_proj",
    "ffn.w_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}


def hf_name(name: str) -> str:
    if name.startswith("layers."):
        _, index, rest = name.split(".", 2)
        module, leaf = rest.rsplit(".", 1)
        return f"model.layers.{index}.{HF_NAMES[module]}.{leaf}"
    return {"tok_emb.weight": "model.embed_tokens.weight", "norm.weight": "model.norm.weight"}[name]


@pytest.mark.slow  # a backward pass through two 135M models on 2 shared cores
def test_loss_and_gradients_match_hf(smollm2_checkpoint, smollm2_tokenizer, hf_reference):
    model, _ = installed_model(smollm2_checkpoint, seq_len=64)
    ids = torch.tensor(smollm2_tokenizer.encode(TEXT)[:65]).view(1, -1).repeat(2, 1)
    ids[1] = ids[1].roll(7)  # two different rows
    ours = next_token_loss(model, (ids[:, :-1], ids[:, 1:]))
    ours.backward()
    hf_reference.zero_grad(set_to_none=True)
    theirs = hf_reference(ids, labels=ids).loss
    theirs.backward()
    assert abs(ours.item() - theirs.item()) <= 1e-5
    hf_params = dict(hf_reference.named_parameters())
    for name, param in model.named_parameters():
        reference = hf_params[hf_name(name)]
        torch.testing.assert_close(param, reference, rtol=0, atol=0, msg=name)  # the mapping is right
        error = (param.grad - reference.grad).norm() / reference.grad.norm()
        assert error <= 1e-4, f"{name}: relative gradient error {error:.2e}"
    hf_reference.zero_grad(set_to_none=True)
