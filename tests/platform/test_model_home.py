"""One home: `ember models` installs where the service looks, even with home set only in config.toml."""

import json

import pytest
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
from transformers import LlamaConfig, LlamaForCausalLM
from typer.testing import CliRunner

from ember.cli import app
from ember.platform.errors import NotFoundError
from ember.platform.ingest.tokens import token_counter_for
from ember.platform.service import EmberService
from ember.platform.settings import Settings


def tiny_hf_checkpoint(directory):
    """A two-layer HF Llama with a byte-level BPE tokenizer.json: what `ember models import` takes."""
    config = LlamaConfig(
        vocab_size=320, hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=128,
    )  # fmt: skip
    LlamaForCausalLM(config).save_pretrained(directory)
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=300,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(["the home of every model is the one home"] * 10, trainer)
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory


@pytest.fixture
def home_in_config_only(tmp_path, monkeypatch, fresh_settings):
    home = tmp_path / "configured-home"
    config = tmp_path / "config.toml"
    config.write_text(f'home = "{home}"\nllm_model = "tiny"\n', encoding="utf-8")
    monkeypatch.delenv("EMBER_HOME", raising=False)
    monkeypatch.delenv("EMBER_LLM_MODEL", raising=False)
    monkeypatch.setenv("EMBER_CONFIG", str(config))
    return home


def test_models_import_installs_where_the_service_looks(tmp_path, home_in_config_only):
    runner = CliRunner()
    source = tiny_hf_checkpoint(tmp_path / "hf")

    result = runner.invoke(app, ["models", "import", str(source), "--name", "tiny"])
    assert result.exit_code == 0, result.output
    installed = home_in_config_only / "models" / "tiny"
    assert (installed / "config.json").is_file()

    settings = Settings()
    assert EmberService(settings).model_path() == installed
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).output)
    assert [(m["name"], m["path"]) for m in listed] == [("tiny", str(installed))]
    assert token_counter_for("tiny", settings.models_dir).count_tokens("the one home") > 0


def test_a_missing_model_names_the_directory_and_the_fix(home_in_config_only):
    with pytest.raises(NotFoundError) as raised:
        EmberService(Settings()).model_path("absent")
    message = str(raised.value)
    assert "'absent'" in message and str(home_in_config_only / "models") in message
    assert "run `ember models pull absent`" in message
    with pytest.raises(ValueError, match="'absent'"):
        token_counter_for("absent", Settings().models_dir)


def test_rerankers_are_found_by_name_under_the_home(tmp_path):
    settings = Settings(home=tmp_path, reranker="")
    assert settings.reranker_path() is None
    (settings.rerankers_dir / "default").mkdir(parents=True)
    (settings.rerankers_dir / "mine").mkdir()
    assert settings.reranker_path() == str(settings.rerankers_dir / "default")
    assert settings.reranker_path("mine") == str(settings.rerankers_dir / "mine")
    assert settings.reranker_path("org/cross-encoder") == "org/cross-encoder"
    assert Settings(home=tmp_path, reranker="mine").reranker_path() == str(settings.rerankers_dir / "mine")
