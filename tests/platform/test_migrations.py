from sqlalchemy import inspect

from ember.platform.db import Database
from ember.platform.migrate import current_revision, head_revision


def test_upgrade_creates_the_catalogue_and_is_idempotent(database_url):
    database = Database(database_url)
    assert current_revision(database.engine) == head_revision()
    tables = set(inspect(database.engine).get_table_names())
    assert {
        "collections",
        "documents",
        "chunks",
        "ingest_jobs",
        "ingest_file_results",
        "alembic_version",
    } <= tables
    Database(database_url).dispose()  # a second start finds nothing to do
    assert current_revision(database.engine) == head_revision()
    database.dispose()


def test_sqlite_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    database = Database(f"sqlite:///{tmp_path / 'e.db'}", busy_timeout_ms=1234)
    with database.engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() == 1234
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    database.dispose()
