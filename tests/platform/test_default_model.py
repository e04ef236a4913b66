"""After scripts/run's setup steps, every command resolves the int8 model, set in config.toml.

The steps run as scripts/run runs them, through the real `ember` command in a fresh home; `models
import` of the packaged SmolLM2 GGUF stands in for `models pull` (the same conversion, no download).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import tomllib

import httpx
import pytest

from ember.platform.service import EmberService
from ember.platform.settings import Settings
from tests.api.server import free_port

INT8 = "smollm2-135m-instruct-int8"
USER_CONFIG = "# my settings\nchunk_size = 256\n\n[notes]\ntopic = 'kept'\n"


@pytest.fixture
def home(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text(USER_CONFIG, encoding="utf-8")
    return home


@pytest.fixture
def env(home):
    env = os.environ | {"EMBER_HOME": str(home), "COLUMNS": "200"}
    for name in ("EMBER_DATABASE_URL", "EMBER_LLM_MODEL", "EMBER_CONFIG"):
        env.pop(name, None)
    return env


def ember(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "ember.cli", *args], env=env, capture_output=True, text=True)


@pytest.mark.slow
def test_after_the_setup_steps_chat_ask_and_serve_use_the_int8_model(home, env, smollm2_gguf, monkeypatch):
    # scripts/run: install the model unless present, its int8 copy unless present, then the default.
    assert ember(env, "models", "show", "smollm2-135m-instruct").returncode != 0
    imported = ember(env, "models", "import", str(smollm2_gguf), "--name", "smollm2-135m-instruct")
    assert imported.returncode == 0, imported.stderr
    assert ember(env, "models", "show", INT8).returncode != 0
    quantized = ember(env, "models", "quantize", "smollm2-135m-instruct", "--mode", "int8")
    assert quantized.returncode == 0, quantized.stderr
    configured = ember(env, "config", "set", "llm_model", INT8, "--if-unset")
    assert configured.returncode == 0, configured.stderr

    config = (home / "config.toml").read_text(encoding="utf-8")
    assert config.startswith("# my settings\nchunk_size = 256\n")  # the user's keys and comments stay
    assert tomllib.loads(config) == {"chunk_size": 256, "llm_model": INT8, "notes": {"topic": "kept"}}
    shown = ember(env, "config", "show").stdout
    assert re.search(rf"llm_model\s*│\s*{INT8}\s*│\s*file\b", shown), shown  # with its source
    rows = json.loads(ember(env, "models", "list", "--json").stdout)
    listed = {row["name"]: row["default"] for row in rows}
    assert listed == {"smollm2-135m-instruct": False, INT8: True}

    # `ember chat` and `ember ask` build their service from fresh settings: this one.
    monkeypatch.setenv("EMBER_HOME", str(home))
    monkeypatch.delenv("EMBER_LLM_MODEL", raising=False)
    monkeypatch.delenv("EMBER_CONFIG", raising=False)
    assert EmberService(Settings()).model_path() == home / "models" / INT8

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "ember.cli", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        health = _health(f"http://127.0.0.1:{port}/health", server)
        assert health["model"] == INT8
    finally:
        server.terminate()
        log = server.communicate(timeout=60)[1]
    assert f"loading model {INT8}…" in log, log  # the server loads it in the background at start

    again = ember(env, "config", "set", "llm_model", "smollm2-135m-instruct", "--if-unset")
    assert again.returncode == 0 and "kept llm_model" in again.stdout
    assert tomllib.loads((home / "config.toml").read_text())["llm_model"] == INT8


def _health(url: str, server: subprocess.Popen, timeout: float = 120) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert server.poll() is None, server.stderr.read()
        try:
            return httpx.get(url, timeout=5).json()
        except httpx.TransportError:
            time.sleep(0.2)
    raise AssertionError(f"ember serve did not answer {url} within {timeout} s")


def test_config_set_keeps_other_keys_and_checks_values(home, env):
    assert ember(env, "config", "set", "chunk_size", "300").returncode == 0
    assert ember(env, "config", "set", "llm_compile", "true").returncode == 0
    config = (home / "config.toml").read_text(encoding="utf-8")
    assert config.startswith("# my settings\nchunk_size = 300\n")
    assert tomllib.loads(config) == {"chunk_size": 300, "llm_compile": True, "notes": {"topic": "kept"}}

    bad = ember(env, "config", "set", "chunk_size", "many")
    assert bad.returncode == 2 and "chunk_size = 'many' is not valid" in bad.stderr
    unknown = ember(env, "config", "set", "colour", "blue")
    assert unknown.returncode == 2 and "unknown setting 'colour'" in unknown.stderr
    assert (home / "config.toml").read_text(encoding="utf-8") == config  # refused values change nothing

    overridden = ember(env | {"EMBER_CHUNK_SIZE": "128"}, "config", "set", "chunk_size", "512")
    assert (
        overridden.returncode == 0 and "EMBER_CHUNK_SIZE in the environment overrides it" in overridden.stderr
    )
