"""`ember config show` masks the LLM API key and database passwords (issue 16, D9)."""

import os
import subprocess
import sys

import pytest

from ember.platform.settings import Settings, describe_sources


def test_config_show_masks_the_api_key_and_the_database_password(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "config.toml").write_text('llm_base_url = "https://proxy:filepass9@llm.example/v1"\n')
    env = os.environ | {
        "EMBER_HOME": str(home),
        "COLUMNS": "1000",
        "EMBER_LLM_API_KEY": "sk-live-secret-123",
        "EMBER_DATABASE_URL": "postgresql://ember:hunter2pass@db.example:5432/ember",
    }
    env.pop("EMBER_CONFIG", None)
    shown = subprocess.run(
        [sys.executable, "-m", "ember.cli", "config", "show"], env=env, capture_output=True, text=True
    )
    assert shown.returncode == 0, shown.stderr
    for secret in ("sk-live-secret-123", "hunter2pass", "filepass9"):
        assert secret not in shown.stdout
    assert "postgresql://ember:***@db.example:5432/ember" in shown.stdout
    assert "https://proxy:***@llm.example/v1" in shown.stdout


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql+psycopg://u:p@ss:w@rd@host/db", "postgresql+psycopg://u:***@host/db"),
        ("postgresql://u@host:5432/db", "postgresql://u@host:5432/db"),  # no password: unchanged
        ("http://host:8080/path@x", "http://host:8080/path@x"),  # a port, not a password
    ],
)
def test_url_passwords_are_hidden_and_nothing_else(tmp_path, url, shown):
    settings = Settings(home=tmp_path, database_url=url, llm_api_key="")
    values = {name: value for name, value, _ in describe_sources(settings)}
    assert values["database_url"] == shown == values["database_url (effective)"]
    assert values["llm_api_key"] == ""  # an empty key shows as empty, not as a masked one
