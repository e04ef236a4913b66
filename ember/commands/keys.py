"""`ember keys create|list|revoke`: API keys for `ember serve`."""

from __future__ import annotations

import typer
from rich.table import Table

from ember.commands.common import console, err_console, service, user_errors

app = typer.Typer(no_args_is_help=True, help="Create, list and revoke API keys.")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="A label for the key, e.g. the client that uses it."),
    scope: list[str] = typer.Option(["read"], "--scope", "-s", help="read, write or admin (repeatable)."),
) -> None:
    """Create a key; its plaintext is printed once and never stored."""
    with user_errors():
        info, plaintext = service().create_key(name, scope)
    err_console.print(
        f"created key {info.id} '{info.name}' with scopes {', '.join(info.scopes)}; store it now:"
    )
    console.print(plaintext)


@app.command("list")
def list_keys() -> None:
    """Every key with its prefix, scopes and state."""
    with user_errors():
        keys = service().list_keys()
    table = Table("id", "name", "prefix", "scopes", "created", "last used", "state")
    for key in keys:
        table.add_row(
            str(key.id),
            key.name,
            key.prefix,
            ",".join(key.scopes),
            key.created_at.strftime("%Y-%m-%d %H:%M"),
            key.last_used_at.strftime("%Y-%m-%d %H:%M") if key.last_used_at else "-",
            "revoked" if key.revoked_at else "active",
        )
    console.print(table)


@app.command("revoke")
def revoke(
    key: str = typer.Argument(..., help="The key's id or prefix, as `ember keys list` shows."),
) -> None:
    """Revoke a key; requests with it get 401 from then on."""
    with user_errors():
        info = service().revoke_key(key)
    console.print(f"revoked key {info.id} '{info.name}' ({info.prefix}…)")
