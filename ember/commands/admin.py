"""`ember config show` and `ember db upgrade|status`."""

from __future__ import annotations

import typer
from rich.table import Table

from ember.commands.common import console, service, user_errors

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
    with user_errors():
        status = service().upgrade_database()
    console.print(f"database at revision {status.revision}: {status.url}")


@db_app.command("status")
def db_status() -> None:
    """The schema revision the database is at and the newest one, without upgrading."""
    with user_errors():
        status = service().database_status()
    console.print(f"database at revision {status.revision or 'none'}: {status.url}")
    if status.up_to_date:
        console.print("up to date")
    else:
        console.print(f"newest revision is {status.head}; run `ember db upgrade` (Ember also does on start)")
