"""`ember ask` through the real command line: ingest a small collection, then ask with and without --agent."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.agents.conftest import DOCUMENTS


@pytest.mark.slow
def test_ember_ask_prints_an_answer_with_resolving_citations(tmp_path, smollm2_models_dir):
    env = os.environ | {
        "EMBER_HOME": str(tmp_path / "home"),
        "EMBER_LLM_MODEL": str(smollm2_models_dir / "smollm2-135m-instruct"),
        "COLUMNS": "200",
    }
    env.pop("EMBER_DATABASE_URL", None)

    def ember(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "ember.cli", *args], env=env, capture_output=True, text=True
        )

    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    assert ember("ingest", str(docs), "-c", "facts").returncode == 0

    rag = ember("ask", "How long is the Kelmora Bridge?", "-c", "facts", "--max-tokens", "32")
    assert rag.returncode == 0, rag.stderr
    cited = re.findall(r"^\[(\d+)\] (.+?) \(chunk \d+\)", rag.stdout, re.MULTILINE)
    assert cited and all(title.startswith("Kelmora Bridge") for _, title in cited)
    assert re.search(r"conversation \d+ · rag", rag.stderr)

    agent = ember(
        "ask",
        "What does a Glass Orchard ticket cost?",
        "-c",
        "facts",
        "--agent",
        "--show-steps",
        "--max-tokens",
        "32",
    )
    assert agent.returncode == 0, agent.stderr
    assert re.search(r"conversation \d+ · agent", agent.stderr)

    missing = ember("ask", "Anything?", "-c", "nope")
    assert missing.returncode == 1 and "collection 'nope' does not exist" in missing.stderr
