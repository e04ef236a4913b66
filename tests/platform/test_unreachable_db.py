"""An unreachable database is one clear line naming it, not a driver traceback (issue 16, D10)."""

import os
import socket
import subprocess
import sys

import pytest

from ember.platform.db import Database
from ember.platform.errors import DatabaseUnavailable


@pytest.fixture
def closed_port() -> int:
    """A local port with nothing listening on it: connections are refused at once."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.parametrize("upgrade", [True, False])
def test_database_raises_one_clear_error(closed_port, upgrade):
    url = f"postgresql://ember:topsecret@127.0.0.1:{closed_port}/ember"
    with pytest.raises(DatabaseUnavailable) as caught:
        Database(url, upgrade=upgrade)
    message = str(caught.value)
    assert f"postgresql+psycopg://ember:***@127.0.0.1:{closed_port}/ember" in message
    assert "refused" in message and "topsecret" not in message and "\n" not in message


@pytest.mark.parametrize(
    "command",
    [("collections", "list"), ("db", "status"), ("index", "check"), ("search", "tides", "-c", "kb")],
)
def test_cli_prints_one_line_and_exits_1(tmp_path, closed_port, command):
    env = os.environ | {
        "EMBER_HOME": str(tmp_path / "home"),
        "EMBER_DATABASE_URL": f"postgresql://ember:topsecret@127.0.0.1:{closed_port}/ember",
    }
    ran = subprocess.run(
        [sys.executable, "-m", "ember.cli", *command], env=env, capture_output=True, text=True
    )
    assert ran.returncode == 1
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1, ran.stderr
    assert lines[0].startswith("error: cannot open the database postgresql+psycopg://ember:***@127.0.0.1:")
    assert "refused" in lines[0] and "topsecret" not in ran.stderr + ran.stdout
