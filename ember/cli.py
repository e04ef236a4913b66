"""The `ember` command: a thin layer over the service facade, the engine and the eval runners.

Each command group lives in its own module under ``ember.commands``; heavy imports (torch,
FAISS, models) happen inside the commands so that ``ember --help`` stays fast.
"""

from __future__ import annotations

import typer

app = typer.Typer(no_args_is_help=True, help="Ember: self-hosted agentic RAG on its own LLM stack.")


def main() -> None:
    app()
