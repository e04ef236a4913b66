"""`ember config show` and `ember db upgrade`."""

from __future__ import annotations

import typer
from rich.table import Table

from ember.commands.common import console, user_errors

config_app = typer.Typer(no_args_is_help=True, help="Inspect Ember's settings.")
db_app = typer.Typer(no_args_is_help=True, help="Manage the database schema.")


@config_app.command("show")
def config_show() -> None:
    """Effective settings and where each value came from (env, file or default)."""
    from ember.platform.settings import Settings, describe_sources

    with user_errors():
        settings = Settings()
        rows = describe_sources(settings)
    table = Table("setting", "value", "source")
    for name, value, source in rows:
        table.add_row(name, str(value), source)
    console.print(table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Apply any pending migrations (Ember also does this on start)."""
    from ember.platform.db import Database
    from ember.platform.migrate import current_revision
    from ember.platform.settings import Settings

    settings = Settings()
    database = Database(settings.effective_database_url, settings.sqlite_busy_timeout_ms)
    console.print(f"database at revision {current_revision(database.engine)}: {database.engine.url!r}")
