"""`ember chat`: the terminal chat (Textual) over a collection."""

from __future__ import annotations

import typer

from ember.commands.common import service, user_errors


def chat(
    collection: str | None = typer.Option(
        None, "--collection", "-c", help="Collection to ask (default: 'sample', else the first one)."
    ),
    agent: bool = typer.Option(False, "--agent", help="Start in agent mode (tools, several searches)."),
) -> None:
    """Ask questions about a collection; answers stream in with their sources."""
    from ember.platform.samples import SAMPLE_COLLECTION
    from ember.ui.app import ChatApp

    svc = service()
    if collection is None:
        with user_errors():
            names = [c.name for c in svc.list_collections()]
        collection = SAMPLE_COLLECTION if SAMPLE_COLLECTION in names else (names[0] if names else None)
    ChatApp(svc, collection, agent).run()
