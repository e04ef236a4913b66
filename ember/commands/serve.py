"""`ember serve`: the OpenAI-compatible HTTP API on uvicorn."""

from __future__ import annotations

import os

import typer

from ember.commands.common import err_console


def serve(
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind."),
    port: int = typer.Option(8000, "--port", min=1, max=65535, help="TCP port."),
    workers: int = typer.Option(1, "--workers", min=1, help="Processes; each loads its own model."),
    auth: bool | None = typer.Option(
        None, "--auth/--no-auth", help="Require API keys (default: on unless bound to loopback)."
    ),
) -> None:
    """OpenAI-compatible chat, embeddings and models, plus collections, uploads and search."""
    import uvicorn

    from ember.platform.api.app import AUTH_ENV, BIND_HOST_ENV
    from ember.platform.settings import is_loopback

    required = auth if auth is not None else not is_loopback(host)
    os.environ[AUTH_ENV] = "1" if required else "0"
    os.environ[BIND_HOST_ENV] = host  # the workers answer requests addressed to it
    state = (
        "on: send 'Authorization: Bearer <key>' (create one with `ember keys create`)" if required else "off"
    )
    err_console.print(f"ember API on http://{host}:{port} · auth {state}")
    uvicorn.run("ember.platform.api.app:app_from_env", factory=True, host=host, port=port, workers=workers)
