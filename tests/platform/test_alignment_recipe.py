"""`ember align rag` end to end with a tiny budget: a real collection (SQLite, BM25 + FAISS), a tiny model
with Ember's own template, synthesis -> SFT (LoRA) -> DPO -> installed adapter model -> held-out checks."""

import json

import pytest
import torch
import typer
from typer.testing import CliRunner

from ember.commands import align
from ember.llm.imports.registry import model_info
from ember.llm.inference.checkpoint import save_model
from ember.llm.inference.config import ModelConfig
from ember.llm.inference.model import Transformer
from ember.llm.tokenizer import Tokenizer
from ember.platform.alignment.own_samples import failed_checks
from ember.platform.alignment.recipe import AlignBudget, _made_by, _save_data, _saved_data, align_rag
from ember.platform.alignment.synth import Synthesized
from ember.platform.errors import EmberError
from ember.platform.index_sync import IndexSync
from ember.platform.service import EmberService
from ember.platform.settings import Settings

PLACES = ["Kelmora", "Tarnwick", "Pellford", "Ostara", "Brisk", "Umbrel", "Vardon", "Quillan"]


def document(i: int, place: str) -> str:
    return (
        f"# The {place} Mill\n\nThe {place} mill grinds grain for the valley towns every autumn. "
        f"The {place} mill employs {20 + 7 * i} millers during the harvest season. "
        f"Its wheel was rebuilt in {1900 + 3 * i} after a great storm broke the old one.\n"
    )


@pytest.fixture
def aligned_home(tmp_path, monkeypatch, fresh_settings):
    docs = tmp_path / "docs"
    docs.mkdir()
    for i, place in enumerate(PLACES):
        (docs / f"{place.lower()}.md").write_text(document(i, place), encoding="utf-8")
    home = tmp_path / "home"
    tokenizer = Tokenizer.train([document(i, p) for i, p in enumerate(PLACES)], vocab_size=420)
    torch.manual_seed(0)
    config = ModelConfig(
        vocab_size=tokenizer.vocab_size,
        d_model=32,
        n_layers=2,
        n_heads=4,
        n_kv_heads=2,
        ffn_dim=64,
        max_seq_len=2048,
    )
    save_model(Transformer(config), home / "models" / "tiny", tokenizer)
    monkeypatch.setenv("EMBER_HOME", str(home))
    monkeypatch.setenv("EMBER_DATABASE_URL", f"sqlite:///{tmp_path / 'ember.db'}")
    monkeypatch.setenv("EMBER_LLM_MODEL", "tiny")
    monkeypatch.setenv("EMBER_RERANKER", "")
    settings = Settings()
    service = EmberService(settings)
    service.ingest_hook = IndexSync(service.db, service.index_store)
    service.ingest(str(docs), "mills")
    service.db.dispose()
    return home


BUDGET = dict(questions=10, sft_steps=3, dpo_steps=2, batch_size=2, passages=3, eval_items=2, seq_len=1536)


@pytest.mark.slow  # ingest with the real embedder, then three training stages: about a minute of CPU
def test_the_recipe_installs_an_aligned_adapter_and_reports_both_models(aligned_home):
    service = EmberService(Settings())
    stages = []
    report = align_rag(
        service,
        "mills",
        "tiny-mills",
        budget=AlignBudget(**BUDGET),
        progress=lambda stage, done, total, metrics: stages.append((stage, done, total)),
    )
    service.db.dispose()
    assert report.counts["rag"] == 10 and report.counts["heldout"] >= 1
    assert [s for s in stages if s[0] == "sft"][-1] == ("sft", 3, 3)
    assert [s for s in stages if s[0] == "dpo"][-1] == ("dpo", 2, 2)
    assert set(report.before) == set(report.after) == {"cites_gold", "number_match", "says_idk"}
    assert model_info(aligned_home / "models" / "tiny-mills")["quantization"] == "lora adapter"
    for file in ("sft.jsonl", "dpo.jsonl", "dpo-own.jsonl", "heldout.jsonl", "report.json"):
        assert (report.run_dir / file).is_file()
    heldout_text = (report.run_dir / "heldout.jsonl").read_text()
    held_places = {
        p
        for p in PLACES
        if f"The {p} mill employs" in heldout_text and p not in (report.run_dir / "sft.jsonl").read_text()
    }
    assert held_places  # some held-out document never reaches the training data
    pairs = [json.loads(line) for line in (report.run_dir / "dpo-own.jsonl").read_text().splitlines()]
    sampled = [p for p in pairs if "rejected_by" in p]
    outcomes = ("own_sample", "sample_passed", "empty_sample")
    assert sum(report.counts[k] for k in outcomes) == len(pairs) == BUDGET["dpo_steps"] * BUDGET["batch_size"]
    assert len(sampled) == report.counts["own_sample"]
    for pair in sampled:  # the model's own text, failing a check the chosen side meets
        # (a sample cut by its token limit is judged on what it already got wrong: a subset)
        failures = set(failed_checks(pair["rejected"][0]["content"], pair["expect"]))
        assert pair["rejected_by"] and set(pair["rejected_by"]) <= failures
        assert failed_checks(pair["chosen"][0]["content"], pair["expect"]) == []
    assert json.loads((report.run_dir / "report.json").read_text())["model"] == "tiny-mills"

    # A second run of the same budget reuses the saved data (no synthesis, no sampling) and resumes the
    # finished training stages from their checkpoints.
    data_before = (report.run_dir / "dpo-own.jsonl").read_text()
    stages.clear()
    service = EmberService(Settings())
    again = align_rag(
        service,
        "mills",
        "tiny-mills",
        budget=AlignBudget(**BUDGET),
        progress=lambda stage, done, total, metrics: stages.append((stage, metrics)),
    )
    service.db.dispose()
    assert [m.get("reused") for s, m in stages if s == "synthesis"] == [str(report.run_dir)]
    assert not [s for s, _ in stages if s == "own samples"]
    assert (report.run_dir / "dpo-own.jsonl").read_text() == data_before and again.counts == report.counts


@pytest.mark.slow
def test_the_command_prints_both_models_side_by_side(aligned_home):
    app = typer.Typer()
    app.command("rag")(align.rag)
    args = ["-c", "mills", "--questions", "6", "--sft-steps", "1", "--dpo-steps", "1", "--eval-items", "1"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "held-out documents of 'mills'" in result.output and "tiny-mills" in result.output
    assert "cites_gold" in result.output


def test_saved_data_is_reused_only_for_the_same_budget_collection_and_base(tmp_path):
    budget = AlignBudget(**BUDGET)
    data = Synthesized(sft=[{"messages": []}], dpo=[{"prompt": str(i)} for i in range(4)], counts={"rag": 1})
    made_by = _made_by(budget, "mills", tmp_path / "models" / "base")
    _save_data(tmp_path, made_by, data)
    assert _saved_data(tmp_path, made_by, 2) == Synthesized(
        sft=data.sft, dpo=data.dpo[:2], heldout=[], counts={"rag": 1}
    )
    assert _saved_data(tmp_path, made_by, 5) is None  # more pairs than were sampled
    assert _saved_data(tmp_path, _made_by(budget, "other", tmp_path / "models" / "base"), 2) is None
    assert _saved_data(tmp_path, _made_by(budget, "mills", tmp_path / "models" / "other"), 2) is None


@pytest.mark.parametrize("option", ["--passages", "--questions", "--sft-steps", "--batch-size"])
def test_a_budget_of_zero_is_refused_naming_the_option(option):
    app = typer.Typer()
    app.command("rag")(align.rag)
    result = CliRunner().invoke(app, ["-c", "mills", option, "0"], env={"COLUMNS": "200"})
    assert result.exit_code == 2
    assert f"Invalid value for '{option}'" in result.output and "greater than or equal to 1" in result.output


def test_an_unknown_source_of_rejections_is_refused_before_any_work(tmp_path, monkeypatch, fresh_settings):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path))
    with pytest.raises(EmberError, match="rejections_from must be 'base' or 'sft', not 'sf'"):
        align_rag(EmberService(Settings()), "mills", "x", budget=AlignBudget(rejections_from="sf"))
    assert not (tmp_path / "runs" / "x").exists()


@pytest.mark.slow
def test_on_policy_rejections_are_sampled_from_the_sft_model(aligned_home):
    service = EmberService(Settings())
    budget = AlignBudget(**{**BUDGET, "rejections_from": "sft"})
    report = align_rag(service, "mills", "tiny-mills-on-policy", budget=budget)
    service.db.dispose()
    saved = json.loads((report.run_dir / "dpo-own.json").read_text())
    assert saved["budget"]["rejections_from"] == "sft" and saved["budget"]["sft_steps"] == BUDGET["sft_steps"]
    pairs = (report.run_dir / "dpo-own.jsonl").read_text().splitlines()
    assert len(pairs) == sum(report.counts[k] for k in ("own_sample", "sample_passed", "empty_sample"))
