"""The CLI's output stays readable at 80 columns and when piped: search as plain rows or JSON, the
answer printed once, an agent fallback said with its reason, and no weight-loading bars.

Piped output runs in process (typer's CliRunner: not a terminal, 80 columns); the terminal case runs
the real `ember` command in a pseudo-terminal 80 columns wide.
"""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ember.cli import app
from ember.platform.service import EmberService
from ember.platform.settings import Settings
from tests.agents.conftest import DOCUMENTS

BOX_DRAWING = re.compile("[\u2500-\u257f]")


@pytest.fixture(scope="module")
def home(tmp_path_factory, smollm2_models_dir) -> Path:
    root = tmp_path_factory.mktemp("cli-output")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    service = EmberService(
        Settings(home=root / "home", database_url=f"sqlite:///{root / 'home' / 'ember.db'}")
    )
    service.ingest(str(docs), "facts")
    service.db.dispose()
    return root / "home"


@pytest.fixture
def ember(home, smollm2_models_dir, monkeypatch, fresh_settings):
    monkeypatch.setenv("EMBER_HOME", str(home))
    monkeypatch.setenv("EMBER_LLM_MODEL", str(smollm2_models_dir / "smollm2-135m-instruct"))
    monkeypatch.delenv("EMBER_DATABASE_URL", raising=False)
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):  # restored after the test
        monkeypatch.setenv(name, os.environ.get(name, ""))

    def run(*args: str):  # noqa: ANN202
        result = CliRunner().invoke(app, list(args))
        assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
        return result

    return run


def _readable(text: str) -> None:
    lines = text.splitlines()
    assert lines and all(len(line) <= 80 for line in lines), text
    assert not BOX_DRAWING.search(text), text  # plain rows, not a table squeezed into 80 columns


def test_search_explain_piped_is_plain_rows(ember):
    out = ember(
        "search", "How long is the Kelmora Bridge?", "-c", "facts", "--explain", "-m", "hybrid"
    ).stdout
    _readable(out)
    header, first, *_ = out.splitlines()
    assert re.fullmatch(r"hybrid · \d+ ms · models loaded in \d+\.\d s", header), header
    assert first.startswith(" 1. Kelmora Bridge")
    assert re.search(r"^    bm25 1 \(.+\) · dense \d+ \(.+\) · fused 1 \(.+\) · rerank –$", out, re.MULTILINE)
    assert "412 meters long" in out  # the passage, in words rather than one word per line


def test_search_json(ember):
    out = ember("search", "Glass Orchard ticket", "-c", "facts", "--json", "-m", "hybrid", "-k", "2").stdout
    result = json.loads(out)
    assert result["mode"] == "hybrid" and result["load_ms"] >= 0 and result["timings_ms"]["total"] >= 0
    first = result["hits"][0]
    assert first["rank"] == 1 and first["title"] == "The Glass Orchard" and "8 crowns" in first["text"]
    assert set(first["stages"]) == {"bm25", "dense", "fused"} and len(result["hits"]) == 2


def test_collection_and_document_tables_fit_80_columns(ember):
    for args in (("collections", "list"), ("documents", "list", "-c", "facts"), ("models", "list")):
        lines = ember(*args).stdout.splitlines()
        assert lines and all(len(line) <= 80 for line in lines), lines


def _stored_answer(stderr: str) -> tuple[str, dict]:
    conversation = int(re.search(r"conversation (\d+)", stderr).group(1))
    message = EmberService().get_conversation(conversation).messages[-1]
    return message.content, message.metadata


def test_ask_prints_the_answer_once(ember):
    result = ember("ask", "How long is the Kelmora Bridge?", "-c", "facts", "--max-tokens", "48")
    answer, _ = _stored_answer(result.stderr)
    shown = " ".join(result.stdout.split())  # wrapped to 80 columns
    assert answer.strip() and shown.count(" ".join(answer.split())) == 1, result.stdout
    assert re.search(r"^\[1\] Kelmora Bridge", result.stdout, re.MULTILINE)
    assert re.search(
        r"^smollm2-135m-instruct \(loaded in \d+\.\d s\) · conversation \d+ · rag · \d+ tokens · [\d.]+ s$",
        result.stderr,
        re.MULTILINE,
    )


def test_ask_agent_says_whether_it_fell_back_and_why(ember):
    result = ember(
        "ask", "What does a Glass Orchard ticket cost?", "-c", "facts", "--agent", "--max-tokens", "48"
    )
    _, metadata = _stored_answer(result.stderr)
    fell_back = metadata["path"] == "agent_fallback"
    assert ("agent fell back to one search and answer:" in result.stderr) == fell_back, result.stderr
    assert f"· {metadata['path']} ·" in result.stderr


def _in_terminal(args: list[str], env: dict[str, str], timeout: float = 300) -> str:
    """Run `ember ARGS` with stdout and stderr on a pseudo-terminal 80 columns wide; what it showed."""
    main, child = pty.openpty()
    fcntl.ioctl(child, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "ember.cli", *args], stdout=child, stderr=child, env=env, close_fds=True
    )
    os.close(child)
    shown, deadline = b"", time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            piece = os.read(main, 4096)
        except OSError:  # the child closed the terminal
            break
        if not piece:
            break
        shown += piece
    process.wait(timeout=10)
    os.close(main)
    assert process.returncode == 0, shown.decode(errors="replace")
    return (
        re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", shown.decode(errors="replace"))
        .replace("\r\n", "\n")
        .replace("\r", "\n")
    )


@pytest.mark.slow
def test_search_on_an_80_column_terminal_shows_no_loading_bars(home):
    env = os.environ | {"EMBER_HOME": str(home), "TERM": "xterm"}
    for name in ("EMBER_DATABASE_URL", "COLUMNS", "HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        env.pop(name, None)
    shown = _in_terminal(
        ["search", "Tarn Observatory mirror", "-c", "facts", "--explain", "-m", "hybrid"], env
    )
    assert "Loading weights" not in shown, shown
    assert " 1. Tarn Observatory" in shown and "3 meters wide" in shown
    assert all(len(line) <= 80 for line in shown.splitlines()), shown
    verbose = _in_terminal(["--verbose", "search", "Tarn", "-c", "facts", "-m", "bm25"], env)
    assert "Loading weights" in verbose
