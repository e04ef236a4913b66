"""Processes that start together on a new database (``ember serve --workers N``) all come up: the
migrations run once, the others wait for them and find the schema current."""

import subprocess
import sys

from ember.platform.db import Database
from ember.platform.migrate import current_revision, head_revision

OPEN = "import sys; from ember.platform.db import Database; Database(sys.argv[1]).dispose()"


def test_four_processes_migrating_one_new_database_all_succeed(database_url):
    processes = [
        subprocess.Popen([sys.executable, "-c", OPEN, database_url], stderr=subprocess.PIPE, text=True)
        for _ in range(4)
    ]
    failures = [p.stderr.read() for p in processes if p.wait(timeout=300) != 0]
    assert not failures, failures[0]
    database = Database(database_url, upgrade=False)
    try:
        assert current_revision(database.engine) == head_revision()
    finally:
        database.dispose()
