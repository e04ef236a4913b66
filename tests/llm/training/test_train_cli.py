"""`ember train prepare` and `ember train pretrain` end to end: the trained model is installed and loads."""

import json

from typer.testing import CliRunner

from ember.cli import app
from ember.llm.inference.checkpoint import load_model
from ember.llm.training.shards import open_split
from ember.platform.service import EmberService
from ember.platform.settings import Settings


def test_prepare_then_pretrain_installs_the_model(
    tmp_path, monkeypatch, fresh_settings, tiny_tokenizer, documents
):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("COLUMNS", "200")
    tiny_tokenizer.save(tmp_path / "tokenizer.json")
    corpus = tmp_path / "docs.jsonl"
    corpus.write_text("".join(json.dumps({"body": text}) + "\n" for text in documents))
    runner = CliRunner()
    data = tmp_path / "data"
    args = ["train", "prepare", str(corpus), "--field", "body", "--out", str(data)]
    result = runner.invoke(
        app, [*args, "--tokenizer", str(tmp_path / "tokenizer.json"), "--val-fraction", "0.2"]
    )
    assert result.exit_code == 0, result.output
    assert f"{len(documents)} documents" in result.output

    run = ["train", "pretrain", "--data", str(data), "--out", str(tmp_path / "run"), "--depth", "1"]
    sizes = [
        "--steps",
        "2",
        "--seq-len",
        "16",
        "--micro-batch",
        "2",
        "--batch-tokens",
        "32",
        "--eval-every",
        "2",
    ]
    result = runner.invoke(app, [*run, *sizes, "--val-tokens", "64", "--name", "tiny"])
    assert result.exit_code == 0, result.output
    assert "registered 'tiny'" in result.output
    model = load_model(tmp_path / "home" / "models" / "tiny")
    assert model.config.n_layers == 1 and model.config.vocab_size == tiny_tokenizer.vocab_size

    result = runner.invoke(
        app, [*run, "--steps", "2", "--seq-len", "16", "--micro-batch", "2", "--batch-tokens", "30"]
    )
    assert result.exit_code == 1
    assert "batch_tokens 30 is not a multiple" in result.output


def test_prepare_takes_every_document_of_a_collection(
    tmp_path, monkeypatch, fresh_settings, tiny_tokenizer, documents
):
    home = tmp_path / "home"
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, text in enumerate(documents):
        (docs / f"note{i:02d}.md").write_text(text)
    service = EmberService(
        Settings(home=home, database_url=f"sqlite:///{home / 'ember.db'}", sync_indexes=False)
    )
    service.ingest(str(docs), "notes")
    service.db.dispose()
    monkeypatch.setenv("EMBER_HOME", str(home))
    monkeypatch.delenv("EMBER_DATABASE_URL", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    tiny_tokenizer.save(tmp_path / "tokenizer.json")
    prepare = ["train", "prepare", "--tokenizer", str(tmp_path / "tokenizer.json"), "--val-fraction", "0.2"]

    result = CliRunner().invoke(app, [*prepare, "--collection", "notes", "--out", str(tmp_path / "data")])
    assert result.exit_code == 0, result.output
    assert f"{len(documents)} documents" in result.output
    tokens = sum(
        shard.tokens.size for split in ("train", "val") for shard in open_split(tmp_path / "data", split)
    )
    # each document once: BOS plus its tokens
    assert tokens == sum(len(tiny_tokenizer.encode(text)) + 1 for text in documents)

    result = CliRunner().invoke(app, [*prepare, "--collection", "nope", "--out", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "nope" in result.output

    result = CliRunner().invoke(app, [*prepare, "--out", str(tmp_path / "none")])
    assert result.exit_code == 1
    assert "nothing to prepare" in result.output
