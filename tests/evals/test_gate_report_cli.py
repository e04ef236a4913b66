"""`ember eval gate` and `ember eval report` on run folders written here (no model needed)."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from ember.cli import app
from ember.evals.runs import open_run


def _run(tmp_path, suite, records, config=None):
    run = open_run(tmp_path / "runs", suite, config or {})
    for record in records:
        run.append_item(record)
    return run


def _answers(tmp_path, correct: int, of: int = 40):
    return _run(
        tmp_path,
        "answers",
        [
            {
                "id": f"q{i}",
                "match": i < correct,
                "citation_valid": True,
                "ttft_s": 1.0 + i / 10,
                "total_s": 2.0,
            }
            for i in range(of)
        ],
        {"model": "m", "quantization": "int8"},
    )


def test_gate_exit_codes_and_table(tmp_path):
    baseline, same, worse = _answers(tmp_path, 30), _answers(tmp_path, 30), _answers(tmp_path, 12)
    runner = CliRunner()
    ok = runner.invoke(app, ["eval", "gate", "--baseline", str(baseline.path), "--candidate", str(same.path)])
    assert ok.exit_code == 0 and "gate passed (2 metrics)" in ok.stdout
    bad = runner.invoke(
        app, ["eval", "gate", "--baseline", str(baseline.path), "--candidate", str(worse.path)]
    )
    assert bad.exit_code == 1 and "gate failed: match regressed" in bad.stdout and "-0.450" in bad.stdout
    better = runner.invoke(
        app, ["eval", "gate", "--baseline", str(worse.path), "--candidate", str(baseline.path)]
    )
    assert better.exit_code == 0
    unknown = runner.invoke(
        app,
        ["eval", "gate", "--baseline", str(baseline.path), "--candidate", str(same.path), "--metric", "x"],
    )
    assert unknown.exit_code == 2 and "unknown metric x" in unknown.stderr


def test_report_compares_runs_and_shows_other_suites(tmp_path):
    a, b = _answers(tmp_path, 30), _answers(tmp_path, 20)
    agent = _run(
        tmp_path,
        "agent",
        [{"id": f"t#{s}", "task_id": "t", "success": s == 0, "steps": 2, "total_s": 3.0} for s in range(2)],
    )
    agent.write_summary({"suite": "agent", "pass^1": 0.5, "pass^2": 0.0})
    llm = _run(tmp_path, "llm", [])
    llm.write_summary({"suite": "llm", "bpb": 1.234, "mcq_acc": 0.5})
    out = tmp_path / "report"
    result = CliRunner().invoke(
        app, ["eval", "report", str(a.path), str(b.path), str(agent.path), str(llm.path), "--out", str(out)]
    )
    assert result.exit_code == 0, result.stderr
    md = (out / "report.md").read_text()
    assert f"| {a.path.name} | {b.path.name} |" in md.replace("| metric | ", "| ")
    assert "| exact/numeric match | 75.0% [" in md and "50.0% [" in md
    assert "pass^2: 0.000" in md and "| bpb | 1.2340 |" in md
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == 4  # bars and latency, for answers and for agent
    assert "<table>" in page
    assert json.loads((a.path / "config.json").read_text())["quantization"] == "int8"


def test_rescore_applies_the_current_scorer_to_stored_responses(tmp_path, monkeypatch, fresh_settings):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    old = _run(
        tmp_path,
        "answers",
        [
            # scored by an older scorer that read "[2]" as the number 2
            {
                "id": "a",
                "response": "The answer is [2].",
                "gold": "2",
                "answer_type": "numeric",
                "match": True,
            },
            {
                "id": "b",
                "response": "It has 6 layers [1].",
                "gold": "6 layers",
                "answer_type": "numeric",
                "match": True,
            },
        ],
        {"collection": "dev"},
    )
    result = CliRunner().invoke(app, ["eval", "rescore", str(old.path)])
    assert result.exit_code == 0, result.stderr
    (new,) = (tmp_path / "home" / "runs").iterdir()
    items = {
        i["id"]: i for i in (json.loads(line) for line in (new / "items.jsonl").read_text().splitlines())
    }
    assert (items["a"]["match"], items["b"]["match"]) == (False, True)
    config = json.loads((new / "config.json").read_text())
    assert config["rescored_from"] == str(old.path) and config["collection"] == "dev"
    assert json.loads((new / "summary.json").read_text())["metrics"]["match"]["mean"] == 0.5


def _agent_item(task: str, sample: int, response: str, **fields) -> dict:
    return {
        "id": f"{task}#{sample}",
        "task_id": task,
        "sample": sample,
        "gold": 4.0,
        "response": response,
        **fields,
    }


def test_rescore_of_an_agent_run_rescores_success_and_pass_hat_k(tmp_path, monkeypatch, fresh_settings):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    tasks = tmp_path / "tasks.jsonl"
    tasks.write_text(
        json.dumps({"id": "t1", "task": "?", "answer": 4, "tolerance": 0.0})
        + "\n"
        + json.dumps({"id": "t2", "task": "?", "answer": 4, "tolerance": 0.5})
        + "\n"
    )
    old = _run(
        tmp_path,
        "agent",
        [  # an older scorer read "4-bit" as the answer 4; items from before the tolerance was stored
            _agent_item("t1", 0, "It uses 4-bit weights.", success=True),
            _agent_item("t1", 1, "The answer is 4.", success=True),
            _agent_item("t2", 0, "About 5.", success=False),  # within t2's 50% in the task file
            _agent_item("t2", 1, "About 5.", success=False, tolerance=0.1),  # the item's own tolerance
        ],
        {"dataset": str(tasks), "samples": 2},
    )
    old.write_summary({"suite": "agent", "items": 4, "metrics": {}, "tasks": 2, "pass^2": 0.5})
    result = CliRunner().invoke(app, ["eval", "rescore", str(old.path)])
    assert result.exit_code == 0, result.stderr
    (new,) = (tmp_path / "home" / "runs").iterdir()
    items = {i["id"]: i for i in map(json.loads, (new / "items.jsonl").read_text().splitlines())}
    assert [items[k]["success"] for k in ("t1#0", "t1#1", "t2#0", "t2#1")] == [False, True, True, False]
    summary = json.loads((new / "summary.json").read_text())
    assert summary["metrics"]["success"]["mean"] == 0.5 and summary["pass^1"] == 0.5
    assert summary["pass^2"] == 0.0 and summary["tasks"] == 2 and summary["rescored_from"] == str(old.path)
    assert json.loads((new / "config.json").read_text())["suite"] == "agent"


def test_rescore_refuses_a_run_it_cannot_rescore(tmp_path, monkeypatch, fresh_settings):
    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    llm = _run(tmp_path, "llm", [{"id": "bpb:x", "bpb": 1.0}])
    result = CliRunner().invoke(app, ["eval", "rescore", str(llm.path)])
    assert result.exit_code == 2 and "only answers and agent runs can be rescored" in result.stderr
    agent = _run(tmp_path, "agent", [_agent_item("t9", 0, "4")], {"dataset": str(tmp_path / "gone.jsonl")})
    result = CliRunner().invoke(app, ["eval", "rescore", str(agent.path)])
    assert result.exit_code == 2 and "gone.jsonl: no such file" in result.stderr
    assert not (tmp_path / "home" / "runs").exists()
