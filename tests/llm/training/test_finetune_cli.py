"""`ember train sft` and `ember train dpo` end to end on a tiny installed model: LoRA SFT installs an adapter
model, DPO continues that adapter, bad data fails naming the file and line."""

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from ember.commands import finetune
from ember.llm.imports.registry import model_info
from ember.llm.inference.checkpoint import save_model
from ember.llm.inference.engine import Engine
from ember.llm.inference.model import Transformer
from ember.llm.tokenizer import Tokenizer

app = typer.Typer()
app.command("sft")(finetune.sft)
app.command("dpo")(finetune.dpo)


@pytest.fixture
def home(tmp_path, monkeypatch, fresh_settings, make_tiny_config):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    tokenizer = Tokenizer.train(["say red green blue yes no"] * 3, vocab_size=300)
    torch.manual_seed(0)
    config = make_tiny_config(tokenizer.vocab_size, max_seq_len=128, tie_embeddings=True)
    save_model(Transformer(config), tmp_path / "home" / "models" / "tiny", tokenizer)
    return tmp_path


def write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_sft_then_dpo_install_adapter_models_that_the_engine_loads(home):
    chats = [
        {"messages": [{"role": "user", "content": f"say {w}"}, {"role": "assistant", "content": f"{w} yes"}]}
        for w in ("red", "green", "blue")
    ]
    runner = CliRunner()
    sft_args = [
        "sft",
        write(home / "sft.jsonl", chats),
        "--base",
        "tiny",
        "--name",
        "tiny-sft",
        "--lora",
        "4",
    ]
    result = runner.invoke(app, [*sft_args, "--steps", "12", "--lr", "1e-2", "--seq-len", "64"])
    assert result.exit_code == 0, result.output
    assert "installed adapter on tiny as 'tiny-sft'" in result.output
    models = home / "home" / "models"
    assert model_info(models / "tiny-sft")["quantization"] == "lora adapter"
    assert (home / "home" / "runs" / "tiny-sft" / "metrics.jsonl").read_text().count("\n") == 12

    pairs = [
        {"prompt": f"say {w}", "chosen": f" {w} yes", "rejected": " no no"} for w in ("red", "green", "blue")
    ]
    dpo_args = ["dpo", write(home / "pairs.jsonl", pairs), "--base", "tiny-sft", "--name", "tiny-dpo"]
    result = runner.invoke(app, [*dpo_args, "--steps", "6", "--lr", "1e-2", "--merge"])
    assert result.exit_code == 0, result.output
    assert "reward accuracy" in result.output and "installed model as 'tiny-dpo'" in result.output
    assert model_info(models / "tiny-dpo")["quantization"] == "none"
    assert Engine.load(models / "tiny-sft", device="cpu").generate(["say red"])[0].token_ids


def test_bad_data_fails_naming_the_file_and_line(home):
    path = write(home / "bad.jsonl", [{"messages": [{"role": "user", "content": "hi"}]}])
    result = CliRunner().invoke(app, ["sft", path, "--base", "tiny", "--name", "x", "--steps", "2"])
    assert result.exit_code == 1
    assert "bad.jsonl:1: the conversation has no assistant turn" in result.output
