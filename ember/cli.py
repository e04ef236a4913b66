"""The `ember` command: a thin layer over the service facade, the engine and the eval runners.

Each command group lives in its own module under ``ember.commands``; heavy imports (torch,
FAISS, models) happen inside the commands so that ``ember --help`` stays fast.
"""

from __future__ import annotations

import typer

from ember.commands import admin, ask, catalogue, index, retrieval, search
from ember.commands import chat as chat_commands
from ember.commands import eval as eval_commands
from ember.commands import keys as keys_commands
from ember.commands import llm as llm_commands
from ember.commands import models as models_commands
from ember.commands import serve as serve_commands

app = typer.Typer(no_args_is_help=True, help="Ember: self-hosted agentic RAG on its own LLM stack.")
app.command("ingest")(catalogue.ingest)
app.command("sample")(catalogue.sample)
app.add_typer(catalogue.collections_app, name="collections")
app.add_typer(catalogue.documents_app, name="documents")
app.add_typer(admin.config_app, name="config")
app.add_typer(admin.db_app, name="db")
app.command("search")(search.search)
app.command("ask")(ask.ask)
app.add_typer(index.app, name="index")
app.add_typer(retrieval.app, name="retrieval")
app.add_typer(eval_commands.app, name="eval")
app.command("serve")(serve_commands.serve)
app.command("chat")(chat_commands.chat)
app.add_typer(keys_commands.app, name="keys")
app.add_typer(llm_commands.app, name="llm")
app.add_typer(models_commands.app, name="models")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
