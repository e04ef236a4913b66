"""Read Llama-architecture GGUF files (llama.cpp's format) into our config and state dict.

Quantized tensors (Q8_0, Q4_0, Q4_1, K-quants, ...) are dequantized to fp32 with the ``gguf``
package.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ember.llm.inference.config import ModelConfig

SUPPORTED_ARCHS = ("llama",)

_LAYER_NAMES = {
    "attn_norm.weight": "attn_norm.weight",
    "attn_q.weight": "attn.wq.weight",
    "attn_k.weight": "attn.wk.weight",
    "attn_v.weight": "attn.wv.weight",
    "attn_output.weight": "attn.wo.weight",
    "attn_q_norm.weight": "attn.q_norm.weight",
    "attn_k_norm.weight": "attn.k_norm.weight",
    "ffn_norm.weight": "ffn_norm.weight",
    "ffn_gate.weight": "ffn.w_gate.weight",
    "ffn_up.weight": "ffn.w_up.weight",
    "ffn_down.weight": "ffn.w_down.weight",
}
_GLOBAL_NAMES = {"token_embd.weight": "tok_emb.weight", "output_norm.weight": "norm.weight"}


def unpermute_rope(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """Undo llama.cpp's Q/K row order (interleaved RoPE pairs) to HF's rotate-half order."""
    rows = weight.shape[0]
    return (
        weight.reshape(n_heads, rows // n_heads // 2, 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def _field(reader, key: str, default=None):
    field = reader.fields.get(key)
    return default if field is None else field.contents()


def config_from_gguf(reader) -> ModelConfig:
    arch = _field(reader, "general.architecture")
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"GGUF architecture {arch!r} is not supported (supported: {SUPPORTED_ARCHS})")
    names = {t.name for t in reader.tensors}
    embd = next(t for t in reader.tensors if t.name == "token_embd.weight")
    scaling = None
    if _field(reader, f"{arch}.rope.scaling.type") not in (None, "none"):
        scaling = {
            "type": _field(reader, f"{arch}.rope.scaling.type"),
            "factor": float(_field(reader, f"{arch}.rope.scaling.factor")),
        }
    return ModelConfig(
        vocab_size=int(embd.shape[1]),
        d_model=int(_field(reader, f"{arch}.embedding_length")),
        n_layers=int(_field(reader, f"{arch}.block_count")),
        n_heads=int(_field(reader, f"{arch}.attention.head_count")),
        n_kv_heads=int(_field(reader, f"{arch}.attention.head_count_kv")),
        ffn_dim=int(_field(reader, f"{arch}.feed_forward_length")),
        max_seq_len=int(_field(reader, f"{arch}.context_length")),
        norm_eps=float(_field(reader, f"{arch}.attention.layer_norm_rms_epsilon")),
        rope_theta=float(_field(reader, f"{arch}.rope.freq_base", 10000.0)),
        rope_scaling=scaling,
        tie_embeddings="output.weight" not in names,
        qk_norm="blk.0.attn_q_norm.weight" in names,
    )


def _our_name(gguf_name: str) -> str:
    if gguf_name in _GLOBAL_NAMES:
        return _GLOBAL_NAMES[gguf_name]
    if gguf_name == "output.weight":
        return "lm_head.weight"
    prefix, layer, rest = gguf_name.split(".", 2)
    if prefix != "blk" or rest not in _LAYER_NAMES:
        raise ValueError(f"GGUF tensor {gguf_name!r} has no counterpart in the Ember model")
    return f"layers.{layer}.{_LAYER_NAMES[rest]}"


def load_gguf(path: Path) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """Config and fp32 state dict (our parameter names) of the GGUF file at ``path``."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GGUF file not found: {path}")
    reader = GGUFReader(path)
    config = config_from_gguf(reader)
    state: dict[str, torch.Tensor] = {}
    for tensor in reader.tensors:
        if tensor.name == "rope_freqs.weight":  # llama3 scaling factors, recomputed from the config
            continue
        weight = np.array(dequantize(tensor.data, tensor.tensor_type), dtype=np.float32)
        weight = weight.reshape([int(d) for d in reversed(tensor.shape)])
        if tensor.name.endswith("attn_q.weight"):
            weight = unpermute_rope(weight, config.n_heads)
        elif tensor.name.endswith("attn_k.weight"):
            weight = unpermute_rope(weight, config.n_kv_heads)
        state[_our_name(tensor.name)] = torch.from_numpy(weight)
    return config, state
