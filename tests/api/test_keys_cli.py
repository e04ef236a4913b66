"""`ember keys create|list|revoke` through the real command line, and the key it prints works."""

from __future__ import annotations

import os
import subprocess
import sys

from ember.platform.service import EmberService
from ember.platform.settings import Settings


def test_keys_create_list_revoke(tmp_path):
    env = os.environ | {"EMBER_HOME": str(tmp_path), "COLUMNS": "200", "EMBER_SYNC_INDEXES": "false"}
    env.pop("EMBER_DATABASE_URL", None)

    def ember(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "ember.cli", "keys", *args], env=env, capture_output=True, text=True
        )

    created = ember("create", "ci-bot", "--scope", "read", "--scope", "write")
    assert created.returncode == 0, created.stderr
    plaintext = created.stdout.strip()
    assert plaintext.startswith("ember-") and "read, write" in created.stderr

    service = EmberService(Settings(home=tmp_path, database_url=f"sqlite:///{tmp_path / 'ember.db'}"))
    assert service.verify_key(plaintext).name == "ci-bot"
    assert service.list_keys()[0].last_used_at is not None

    listed = ember("list")
    assert "ci-bot" in listed.stdout and plaintext[:12] in listed.stdout and plaintext not in listed.stdout
    assert "active" in listed.stdout

    assert ember("revoke", plaintext[:12]).returncode == 0
    assert "revoked" in ember("list").stdout
    assert service.verify_key(plaintext) is None
    assert ember("revoke", "999").returncode == 1
    assert ember("create", "x", "--scope", "root").returncode == 2
