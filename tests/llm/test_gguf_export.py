"""GGUF export: back through Ember's importer, into transformers, and through `ember models export`."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ember.cli import app
from ember.llm.imports.gguf_export import export_gguf, write_gguf
from ember.llm.imports.gguf_import import load_gguf
from ember.llm.inference.checkpoint import model_from_state, save_model
from ember.llm.inference.config import ModelConfig
from ember.llm.inference.evaluate import bits_per_byte
from ember.llm.inference.model import Transformer
from ember.llm.inference.quantize import quantize_model
from ember.llm.tokenizer import Tokenizer
from ember.llm.tokenizer.gguf_import import load_gguf_tokenizer

HELDOUT = (
    "The mitochondria is the powerhouse of the cell. It produces energy through respiration, turning "
    "glucose and oxygen into carbon dioxide, water and ATP.\n"
    "def mean(values):\n    return sum(values) / len(values)\n"
    "In 1969, Apollo 11 landed on the Moon; Neil Armstrong was the first person to walk on its surface."
)


def f16_rounded(model: Transformer) -> Transformer:
    """``model`` with every matrix rounded to fp16 (norms stay fp32, as the f16 export writes them)."""
    state = {k: v.half().float() if v.ndim > 1 else v for k, v in model.state_dict().items()}
    if model.config.tie_embeddings:
        del state["lm_head.weight"]
    return model_from_state(model.config, state).eval()


@pytest.fixture(scope="module")
def exported(smollm2_checkpoint, tmp_path_factory):
    """SmolLM2 exported once per type, in one directory (transformers loads files by directory)."""
    directory = tmp_path_factory.mktemp("gguf-export")
    return {
        kind: export_gguf(smollm2_checkpoint, directory / f"{kind}.gguf", kind)
        for kind in ("f16", "q8_0", "q4_0")
    }


def test_f16_round_trip_gives_the_f16_rounded_logits_and_the_same_tokenizer(
    smollm2, smollm2_tokenizer, exported
):
    config, state = load_gguf(exported["f16"])
    assert config == smollm2.config
    ids = torch.tensor([smollm2_tokenizer.encode(HELDOUT)])
    with torch.inference_mode():
        error = (model_from_state(config, state).eval()(ids) - f16_rounded(smollm2)(ids)).abs().max()
    assert error.item() < 1e-6

    back = load_gguf_tokenizer(exported["f16"])
    assert (back.vocab, back.merge_order) == (smollm2_tokenizer.vocab, smollm2_tokenizer.merge_order)
    assert (back.special_tokens, back.chat_template) == (
        smollm2_tokenizer.special_tokens,
        smollm2_tokenizer.chat_template,
    )
    assert (back.bos_id, back.eos_id, back.pad_id) == (1, 2, 2)


@pytest.mark.slow  # transformers converts the 49k-token vocabulary and 270 MB of f16: minutes on 2 busy cores
def test_transformers_loads_the_f16_file_and_agrees(smollm2, smollm2_tokenizer, exported):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = exported["f16"]
    hf = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    ids = torch.tensor([smollm2_tokenizer.encode(HELDOUT)])
    with torch.inference_mode():
        assert (hf(ids).logits - f16_rounded(smollm2)(ids)).abs().max().item() < 1e-3
    # The exported merges tokenize as Ember does under transformers' pair-by-pair BPE too.
    hf_tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    assert hf_tokenizer.encode(HELDOUT, add_special_tokens=False) == smollm2_tokenizer.encode(HELDOUT)


def test_q8_0_weights_are_the_gguf_packages_q8_0_of_ours(smollm2, exported):
    from gguf import GGMLQuantizationType
    from gguf.quants import dequantize, quantize

    _, state = load_gguf(exported["q8_0"])
    ours = smollm2.state_dict()
    assert set(state) == set(ours) - {"lm_head.weight"}
    for name, tensor in state.items():
        original = ours[name].numpy()
        if original.ndim > 1:
            q8_0 = GGMLQuantizationType.Q8_0
            original = dequantize(quantize(original, q8_0), q8_0)
        assert np.array_equal(tensor.numpy(), original), name


def test_q4_0_keeps_the_bits_per_byte_within_5_percent(smollm2, smollm2_tokenizer, exported):
    assert exported["q4_0"].stat().st_size < 0.4 * exported["f16"].stat().st_size
    q4_0 = model_from_state(*load_gguf(exported["q4_0"])).eval()
    fp32 = bits_per_byte(smollm2, smollm2_tokenizer, HELDOUT)
    assert bits_per_byte(q4_0, smollm2_tokenizer, HELDOUT) < 1.05 * fp32


def tiny_model(d_model: int = 64, **options) -> Transformer:
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=320, d_model=d_model, n_layers=2, n_heads=4, n_kv_heads=2, ffn_dim=128, max_seq_len=128,
        **options,
    )  # fmt: skip
    return Transformer(config).eval()


@pytest.fixture(scope="module")
def tiny_tokenizer() -> Tokenizer:
    """Ember's own BPE, 300 tokens for a 320-row model: the last rows are padding."""
    return Tokenizer.train(["the one home of every model is the one home"] * 10, vocab_size=300)


def test_int4_checkpoints_export_their_dequantized_weights(tiny_tokenizer, tmp_path):
    model = quantize_model(tiny_model(), "int4", group_size=32)
    checkpoint = save_model(model, tmp_path / "tiny-int4", tiny_tokenizer)
    for kind in ("f16", "q4_1"):  # q4_1 blocks hold int4's scale and minimum (in fp16)
        _, state = load_gguf(export_gguf(checkpoint, tmp_path / f"{kind}.gguf", kind))
        for name, tensor in state.items():
            if kind == "q4_1" and not name.startswith("layers."):
                continue  # the embedding and output layer are Q8_0 in 4-bit files
            module = model.get_submodule(name.removesuffix(".weight"))
            expected = module.dequantized() if hasattr(module, "dequantized") else module.weight
            error = (tensor - expected).abs().max() / expected.abs().max()
            assert error.item() < 2e-3, (kind, name)
    tokens = load_gguf_tokenizer(tmp_path / "f16.gguf")
    assert tokens.encode("the one home") == tiny_tokenizer.encode("the one home")


def test_unknown_types_and_unblockable_rows_are_refused_by_name(tiny_tokenizer, tmp_path):
    with pytest.raises(ValueError, match=r"unknown GGUF type 'q5_k': use one of f16, q8_0, q4_0"):
        write_gguf(tiny_model(), tiny_tokenizer, tmp_path / "m.gguf", "q5_k", "tiny")
    narrow = tiny_model(d_model=48)  # rows of 48 values: not whole 32-value blocks
    with pytest.raises(ValueError, match=r"tensor token_embd\.weight \(tok_emb\.weight\) has rows of 48"):
        write_gguf(narrow, tiny_tokenizer, tmp_path / "m.gguf", "q8_0", "tiny")
    assert list(tmp_path.iterdir()) == []
    write_gguf(narrow, tiny_tokenizer, tmp_path / "m.gguf", "f16", "tiny")  # f16 has no blocks
    assert load_gguf(tmp_path / "m.gguf")[0].to_dict() == pytest.approx(narrow.config.to_dict())


def test_linear_rope_scaling_is_written_and_other_kinds_refused(tiny_tokenizer, tmp_path):
    scaled = tiny_model(rope_scaling={"type": "linear", "factor": 2.0})
    write_gguf(scaled, tiny_tokenizer, tmp_path / "linear.gguf", "f16", "tiny")
    assert load_gguf(tmp_path / "linear.gguf")[0].rope_scaling == {"type": "linear", "factor": 2.0}
    llama3 = {"type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0}
    llama3["original_max_position_embeddings"] = 64
    with pytest.raises(ValueError, match="rope scaling 'llama3' cannot be exported"):
        write_gguf(tiny_model(rope_scaling=llama3), tiny_tokenizer, tmp_path / "m.gguf", "f16", "tiny")
    with pytest.raises(ValueError, match="Q/K norms"):
        write_gguf(tiny_model(qk_norm=True), tiny_tokenizer, tmp_path / "m.gguf", "f16", "tiny")


def test_models_export_command(tiny_tokenizer, tmp_path, monkeypatch, fresh_settings):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    save_model(tiny_model(), tmp_path / "models" / "tiny", tiny_tokenizer)
    runner = CliRunner()

    result = runner.invoke(
        app, ["models", "export", "tiny", "--gguf", str(tmp_path / "tiny.gguf"), "--type", "q8_0"]
    )
    assert result.exit_code == 0, result.output
    assert "tiny.gguf" in result.output
    # GGUF stores norm_eps as float32, hence approx.
    assert load_gguf(tmp_path / "tiny.gguf")[0].to_dict() == pytest.approx(tiny_model().config.to_dict())

    result = runner.invoke(
        app, ["models", "export", "tiny", "--gguf", str(tmp_path / "x.gguf"), "--type", "q3"]
    )
    assert result.exit_code == 1 and "unknown GGUF type 'q3'" in result.output
    result = runner.invoke(app, ["models", "export", "absent", "--gguf", str(tmp_path / "x.gguf")])
    assert result.exit_code == 1 and "no Ember model 'absent'" in result.output
