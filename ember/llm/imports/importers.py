"""Convert open-weight checkpoints (GGUF, HF Llama safetensors) into Ember's format."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from ember.llm.imports.gguf_import import load_gguf
from ember.llm.inference.checkpoint import model_from_state, save_model
from ember.llm.inference.config import ModelConfig

_HF_LAYER_NAMES = {
    "input_layernorm.weight": "attn_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "self_attn.q_proj.weight": "attn.wq.weight",
    "self_attn.k_proj.weight": "attn.wk.weight",
    "self_attn.v_proj.weight": "attn.wv.weight",
    "self_attn.o_proj.weight": "attn.wo.weight",
    "self_attn.q_norm.weight": "attn.q_norm.weight",
    "self_attn.k_norm.weight": "attn.k_norm.weight",
    "mlp.gate_proj.weight": "ffn.w_gate.weight",
    "mlp.up_proj.weight": "ffn.w_up.weight",
    "mlp.down_proj.weight": "ffn.w_down.weight",
}


def import_gguf(gguf_path: Path, target: Path) -> Path:
    """Write the GGUF model (weights dequantized to fp32, tokenizer, chat template) to ``target``."""
    from ember.llm.tokenizer.gguf_import import load_gguf_tokenizer

    return save_model(model_from_state(*load_gguf(gguf_path)), target, load_gguf_tokenizer(gguf_path))


def hf_config(data: dict) -> ModelConfig:
    """Our config from an HF ``config.json`` of the Llama family."""
    if data.get("attention_bias") or data.get("mlp_bias"):
        raise ValueError("HF checkpoint uses biases in attention or MLP; Ember's Llama has none")
    # transformers >= 5 keeps theta and scaling together in "rope_parameters".
    rope = data.get("rope_scaling") or data.get("rope_parameters") or {}
    scaling = {k: v for k, v in rope.items() if k != "rope_theta"}
    if (scaling.get("rope_type") or scaling.get("type")) in (None, "default"):
        scaling = None
    config = ModelConfig(
        vocab_size=data["vocab_size"],
        d_model=data["hidden_size"],
        n_layers=data["num_hidden_layers"],
        n_heads=data["num_attention_heads"],
        n_kv_heads=data.get("num_key_value_heads") or data["num_attention_heads"],
        ffn_dim=data["intermediate_size"],
        max_seq_len=data.get("max_position_embeddings", 4096),
        norm_eps=data.get("rms_norm_eps", 1e-5),
        rope_theta=data.get("rope_theta") or rope.get("rope_theta", 10000.0),
        rope_scaling=scaling,
        tie_embeddings=bool(data.get("tie_word_embeddings", False)),
    )
    if data.get("head_dim", config.head_dim) != config.head_dim:
        raise ValueError(f"HF head_dim {data['head_dim']} differs from hidden_size / num_attention_heads")
    return config


def _our_hf_name(name: str) -> str:
    if name == "model.embed_tokens.weight":
        return "tok_emb.weight"
    if name == "model.norm.weight":
        return "norm.weight"
    if name == "lm_head.weight":
        return name
    parts = name.split(".", 3)
    if parts[:2] == ["model", "layers"] and parts[3] in _HF_LAYER_NAMES:
        return f"layers.{parts[2]}.{_HF_LAYER_NAMES[parts[3]]}"
    raise ValueError(f"HF tensor {name!r} has no counterpart in the Ember model")


def load_hf(directory: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Config and fp32 state dict of an HF Llama-family safetensors directory."""
    directory = Path(directory)
    files = sorted(directory.glob("*.safetensors"))
    if not (directory / "config.json").is_file() or not files:
        raise FileNotFoundError(f"{directory} is not an HF checkpoint (needs config.json and *.safetensors)")
    config = hf_config(json.loads((directory / "config.json").read_text()))
    state = {}
    for file in files:
        for name, tensor in load_file(str(file)).items():
            if not name.endswith("rotary_emb.inv_freq"):
                state[_our_hf_name(name)] = tensor.float()
    if config.tie_embeddings:
        state.pop("lm_head.weight", None)
    return config, state


def import_hf(directory: Path, target: Path) -> Path:
    """Write the HF checkpoint in ``directory`` (with its tokenizer.json) to ``target``."""
    from ember.llm.tokenizer.hf_import import load_hf_tokenizer

    tokenizer = load_hf_tokenizer(Path(directory) / "tokenizer.json")
    return save_model(model_from_state(*load_hf(directory)), target, tokenizer)
