"""Write Ember models as Llama-architecture GGUF files, for llama.cpp, Ollama and transformers: the
inverse of gguf_import.

Types: f16, and q8_0 / q4_0 / q4_1 quantized by the ``gguf`` package. Norm weights stay F32, as
llama.cpp's converter writes them. Under the 4-bit types the token embedding (the output layer too,
when tied) and the output layer stay Q8_0: llama.cpp's own quantizer keeps the output layer above 4
bits. Int8 and int4 checkpoints are dequantized first, then quantized to the GGUF type.
"""

from __future__ import annotations

from pathlib import Path

import gguf
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file

from ember.llm.imports.gguf_import import _GLOBAL_NAMES, _LAYER_NAMES
from ember.llm.inference.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_tokenizer, model_from_state
from ember.llm.inference.config import ModelConfig
from ember.llm.inference.model import Transformer
from ember.llm.inference.quantize import Int4Linear, Int8Linear
from ember.llm.tokenizer.gguf_export import add_tokenizer
from ember.llm.tokenizer.tokenizer import Tokenizer

# --type: (GGML type of the matrices, GGML type of the embedding and output layer, llama.cpp file type)
GGUF_TYPES = {
    "f16": ("F16", "F16", "MOSTLY_F16"),
    "q8_0": ("Q8_0", "Q8_0", "MOSTLY_Q8_0"),
    "q4_0": ("Q4_0", "Q8_0", "MOSTLY_Q4_0"),
    "q4_1": ("Q4_1", "Q8_0", "MOSTLY_Q4_1"),
}
_EDGE_TENSORS = ("token_embd.weight", "output.weight")
_GGUF_GLOBAL_NAMES = {ours: theirs for theirs, ours in _GLOBAL_NAMES.items()}
_GGUF_GLOBAL_NAMES["lm_head.weight"] = "output.weight"
_GGUF_LAYER_NAMES = {ours: theirs for theirs, ours in _LAYER_NAMES.items()}


def gguf_name(name: str) -> str:
    """The GGUF tensor name of an Ember parameter name."""
    if name in _GGUF_GLOBAL_NAMES:
        return _GGUF_GLOBAL_NAMES[name]
    _, layer, rest = name.split(".", 2)
    return f"blk.{layer}.{_GGUF_LAYER_NAMES[rest]}"


def permute_rope(weight: np.ndarray, n_heads: int) -> np.ndarray:
    """HF's rotate-half Q/K row order to llama.cpp's interleaved RoPE pairs (what its converter does)."""
    rows = weight.shape[0]
    return (
        weight.reshape(n_heads, 2, rows // n_heads // 2, *weight.shape[1:])
        .swapaxes(1, 2)
        .reshape(weight.shape)
    )


def dense_weights(model: Transformer) -> dict[str, torch.Tensor]:
    """fp32 weights by parameter name: int8/int4 layers dequantized, a tied LM head listed once (as
    tok_emb.weight; GGUF ties by leaving output.weight out)."""
    state = {name: p.detach().float() for name, p in model.named_parameters()}
    for name, module in model.named_modules():
        if isinstance(module, (Int8Linear, Int4Linear)):
            state[f"{name}.weight"] = module.dequantized()
    return state


def encode_tensor(
    name: str, weight: np.ndarray, ggml_type: str
) -> tuple[np.ndarray, gguf.GGMLQuantizationType]:
    """(data, GGML type) of one tensor, or a ValueError naming it when the type cannot hold it."""
    qtype = gguf.GGMLQuantizationType[ggml_type if weight.ndim > 1 else "F32"]
    block = gguf.GGML_QUANT_SIZES[qtype][0]
    if weight.shape[-1] % block:
        raise ValueError(
            f"tensor {name} has rows of {weight.shape[-1]} values; {ggml_type} stores blocks of {block}, "
            f"so the rows must be a multiple of {block} (export with --type f16 instead)"
        )
    return gguf.quants.quantize(np.ascontiguousarray(weight), qtype), qtype


def check_type(gguf_type: str) -> None:
    if gguf_type not in GGUF_TYPES:
        raise ValueError(f"unknown GGUF type {gguf_type!r}: use one of {', '.join(GGUF_TYPES)}")


def gguf_tensors(
    model: Transformer, gguf_type: str
) -> dict[str, tuple[np.ndarray, gguf.GGMLQuantizationType]]:
    """Every tensor of ``model`` in llama.cpp's names, Q/K row order and ``gguf_type``."""
    check_type(gguf_type)
    config = model.config
    matrix_type, edge_type, _ = GGUF_TYPES[gguf_type]
    heads = {"attn_q.weight": config.n_heads, "attn_k.weight": config.n_kv_heads}
    tensors = {}
    for name, tensor in dense_weights(model).items():
        target = gguf_name(name)
        weight = tensor.numpy()
        n_heads = heads.get(target.split(".", 2)[-1])
        if n_heads:
            weight = permute_rope(weight, n_heads)
        ggml_type = edge_type if target in _EDGE_TENSORS else matrix_type
        tensors[target] = encode_tensor(f"{target} ({name})", weight, ggml_type)
    return tensors


def _add_architecture(writer, config: ModelConfig) -> None:
    """llama.cpp's llama hyperparameters, or a ValueError for what that architecture cannot run."""
    if config.qk_norm:
        raise ValueError("the model has Q/K norms, which llama.cpp's llama architecture does not have")
    writer.add_context_length(config.max_seq_len)
    writer.add_embedding_length(config.d_model)
    writer.add_block_count(config.n_layers)
    writer.add_feed_forward_length(config.ffn_dim)
    writer.add_head_count(config.n_heads)
    writer.add_head_count_kv(config.n_kv_heads)
    writer.add_layer_norm_rms_eps(config.norm_eps)
    writer.add_rope_dimension_count(config.head_dim)
    writer.add_rope_freq_base(config.rope_theta)
    writer.add_vocab_size(config.vocab_size)
    if config.rope_scaling:
        kind = config.rope_scaling.get("type") or config.rope_scaling.get("rope_type")
        if kind != "linear":
            raise ValueError(f"rope scaling {kind!r} cannot be exported yet (only 'linear' can)")
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(float(config.rope_scaling["factor"]))


def write_gguf(model: Transformer, tokenizer: Tokenizer, out: Path, gguf_type: str, name: str) -> Path:
    """Write ``model`` and ``tokenizer`` to the GGUF file ``out`` with ``gguf_type`` weights.

    Everything is encoded (and checked) before the file is opened, and the file appears under its name
    only once complete.
    """
    check_type(gguf_type)
    out = Path(out)
    partial = out.with_name(out.name + ".partial")
    writer = gguf.GGUFWriter(str(partial), "llama")  # opens the file only at write_header_to_file
    _add_architecture(writer, model.config)
    writer.add_name(name)
    writer.add_file_type(gguf.LlamaFileType[GGUF_TYPES[gguf_type][2]])
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_tokenizer(writer, tokenizer, model.config.vocab_size)
    for target, (data, qtype) in gguf_tensors(model, gguf_type).items():
        writer.add_tensor(target, data, raw_dtype=qtype)
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
    except BaseException:
        writer.close()
        partial.unlink(missing_ok=True)
        raise
    partial.replace(out)
    return out


def load_for_export(directory: Path) -> Transformer:
    """The checkpoint in ``directory`` as stored (quantized layers unprepared: export only dequantizes)."""
    directory = Path(directory)
    with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as handle:
        metadata = handle.metadata() or {}
    mode = metadata.get("quantization", "none")
    quantization = None if mode == "none" else (mode, int(metadata["group_size"]))
    config = ModelConfig.load(directory / CONFIG_FILE)
    return model_from_state(config, load_file(str(directory / WEIGHTS_FILE)), quantization)


def export_gguf(directory: Path, out: Path, gguf_type: str = "f16") -> Path:
    """Write the Ember checkpoint in ``directory`` (with its tokenizer) as the GGUF file ``out``."""
    directory = Path(directory)
    check_type(gguf_type)  # before the slow load
    try:
        tokenizer = load_tokenizer(directory)
    except FileNotFoundError:
        raise ValueError(f"{directory} has no tokenizer.json, and a GGUF file must carry one") from None
    return write_gguf(load_for_export(directory), tokenizer, out, gguf_type, directory.name)
