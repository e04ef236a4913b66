"""Import of HF Llama safetensors and of GGUF files of every supported tensor type."""

import numpy as np
import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from ember.llm.imports.gguf_import import load_gguf
from ember.llm.imports.importers import load_hf
from ember.llm.inference.checkpoint import load_model, model_from_state


def tiny_hf_llama(tie: bool, **rope) -> LlamaForCausalLM:
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=320, hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=256, tie_word_embeddings=tie, **rope,
    )  # fmt: skip
    return LlamaForCausalLM(config).eval()


@pytest.mark.parametrize(
    "tie, rope",
    [
        (True, {}),
        (False, {"rope_parameters": {"rope_type": "linear", "factor": 2.0, "rope_theta": 5e5}}),
        (
            False,
            {
                "rope_parameters": {
                    "rope_type": "llama3",
                    "factor": 8.0,
                    "low_freq_factor": 1.0,
                    "high_freq_factor": 4.0,
                    "original_max_position_embeddings": 64,
                    "rope_theta": 5e5,
                }  # fmt: skip
            },
        ),
    ],
)
def test_hf_llama_import_matches_transformers(tmp_path, tie, rope):
    hf = tiny_hf_llama(tie, **rope)
    hf.save_pretrained(tmp_path)
    ours = model_from_state(*load_hf(tmp_path)).eval()
    ids = torch.randint(0, 320, (2, 200))
    with torch.inference_mode():
        assert (ours(ids) - hf(ids).logits).abs().max().item() < 1e-4


def write_gguf(path, hf: LlamaForCausalLM, qtype_name: str) -> dict[str, np.ndarray]:
    """A GGUF as llama.cpp's converter writes it: Q/K rows permuted, matrices quantized."""
    import gguf

    cfg = hf.config
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_rope_freq_base(10000.0)
    names = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight"}
    parts = {"q_proj": "attn_q", "k_proj": "attn_k", "v_proj": "attn_v", "o_proj": "attn_output"}
    parts |= {"gate_proj": "ffn_gate", "up_proj": "ffn_up", "down_proj": "ffn_down"}
    parts |= {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm"}
    qtype = gguf.GGMLQuantizationType[qtype_name]
    originals = {}
    for name, tensor in hf.state_dict().items():
        if name == "lm_head.weight":
            continue
        w = tensor.numpy().astype(np.float32)
        if name not in names:
            layer, part = name.split(".")[2], name.split(".")[-2]
            names[name] = f"blk.{layer}.{parts[part]}.weight"
        originals[names[name]] = w
        heads = {"q_proj": cfg.num_attention_heads, "k_proj": cfg.num_key_value_heads}.get(
            name.split(".")[-2]
        )
        if heads:
            w = w.reshape(heads, 2, w.shape[0] // heads // 2, w.shape[1]).swapaxes(1, 2).reshape(w.shape)
        if w.ndim == 2:
            writer.add_tensor(names[name], gguf.quants.quantize(w, qtype), raw_dtype=qtype)
        else:
            writer.add_tensor(names[name], w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return originals


@pytest.mark.parametrize(
    "qtype, tolerance", [("F32", 1e-6), ("F16", 1e-3), ("Q8_0", 0.02), ("Q4_0", 0.3), ("Q4_1", 0.3)]
)
def test_gguf_tensor_types_and_qk_permutation(tmp_path, qtype, tolerance):
    hf = tiny_hf_llama(tie=True)
    write_gguf(tmp_path / "m.gguf", hf, qtype)
    config, state = load_gguf(tmp_path / "m.gguf")
    assert (config.n_heads, config.n_kv_heads, config.tie_embeddings) == (4, 2, True)
    for name, tensor in model_from_state(*load_hf_like(hf)).state_dict().items():
        if name == "lm_head.weight":
            continue
        error = (state[name] - tensor).abs().max().item() / tensor.abs().max().item()
        assert error < tolerance, (name, error)


def load_hf_like(hf: LlamaForCausalLM):
    from ember.llm.imports.importers import _our_hf_name, hf_config

    state = {_our_hf_name(k): v for k, v in hf.state_dict().items() if k != "lm_head.weight"}
    return hf_config(hf.config.to_dict()), state


def test_gguf_f32_model_matches_transformers(tmp_path):
    hf = tiny_hf_llama(tie=True)
    write_gguf(tmp_path / "m.gguf", hf, "F32")
    ours = model_from_state(*load_gguf(tmp_path / "m.gguf")).eval()
    ids = torch.randint(0, 320, (1, 50))
    with torch.inference_mode():
        assert (ours(ids) - hf(ids).logits).abs().max().item() < 1e-4


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing.gguf"):
        load_gguf(tmp_path / "nothing.gguf")
    with pytest.raises(FileNotFoundError, match="not an HF checkpoint"):
        load_hf(tmp_path)
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_model(tmp_path)
