"""`ember db upgrade|status`."""

from __future__ import annotations

import typer

from ember.commands.common import console, service, user_errors

db_app = typer.Typer(no_args_is_help=True, help="Manage the database schema.")


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
