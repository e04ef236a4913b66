"""bench/answer/run.py end to end: a two-document corpus, one factoid, one agent task, real SmolLM2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "answer" / "run.py"


@pytest.mark.slow
def test_bench_prints_the_summary_and_writes_per_item_results(tmp_path, smollm2_models_dir):
    def jsonl(name: str, rows: list[dict]) -> Path:
        path = tmp_path / name
        path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
        return path

    corpus = jsonl(
        "corpus.jsonl",
        [
            {"_id": "a", "title": "Kelmora Bridge", "text": "The Kelmora Bridge is 412 meters long."},
            {"_id": "b", "title": "Glass Orchard", "text": "Visitors pay 8 crowns for a ticket."},
        ],
    )
    factoid = jsonl(
        "factoid.jsonl",
        [
            {
                "id": "f1",
                "question": "How long is the Kelmora Bridge?",
                "answer": "412",
                "answer_type": "numeric",
            }
        ],
    )
    tasks = jsonl(
        "tasks.jsonl", [{"id": "t1", "task": "What do two tickets to the Glass Orchard cost?", "answer": 16}]
    )
    out = tmp_path / "results.json"
    model = str(smollm2_models_dir / "smollm2-135m-instruct")
    args = ["--corpus", corpus, "--factoid", factoid, "--tasks", tasks, "--model", model]
    args += ["--max-tokens", "24", "--home", tmp_path / "home", "--out", out]
    run = subprocess.run(
        [sys.executable, BENCH, *map(str, args)], capture_output=True, text=True, timeout=600
    )
    assert run.returncode == 0, run.stderr
    assert "exact/numeric match" in run.stdout and "agent task success" in run.stdout
    results = json.loads(out.read_text())
    assert [r["id"] for r in results["factoids"]] == ["f1"] and [r["id"] for r in results["tasks"]] == ["t1"]
    assert set(results["factoids"][0]) == {
        "id",
        "ttft_s",
        "total_s",
        "match",
        "cited",
        "cited_valid",
        "flags",
        "top_dense",
        "completion_tokens",
        "answer",
    }
    assert set(results["tasks"][0]) == {"id", "total_s", "success", "path", "tools", "flags", "answer"}
