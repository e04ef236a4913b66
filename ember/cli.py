"""The `ember` command: a thin layer over the service facade, the engine and the eval runners.

Each command group lives in its own module under ``ember.commands``; heavy imports (torch,
FAISS, models) happen inside the commands so that ``ember --help`` stays fast.
"""

from __future__ import annotations

import os

import typer

from ember.commands import admin, align, ask, catalogue, finetune, index, retrieval, search
from ember.commands import chat as chat_commands
from ember.commands import config as config_commands
from ember.commands import eval as eval_commands
from ember.commands import keys as keys_commands
from ember.commands import llm as llm_commands
from ember.commands import models as models_commands
from ember.commands import serve as serve_commands
from ember.commands import train as train_commands
from ember.commands.common import EXIT_PARTIAL, print_error
from ember.platform.errors import EmberError

app = typer.Typer(no_args_is_help=True, help="Ember: self-hosted agentic RAG on its own LLM stack.")


@app.callback()
def options(
    verbose: bool = typer.Option(
        False, "--verbose", "-v", help="Show the model libraries' loading bars and warnings."
    ),
) -> None:
    if not verbose:
        # Read when huggingface_hub and transformers are first imported, which the commands do lazily.
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")


app.command("ingest")(catalogue.ingest)
app.command("sample")(catalogue.sample)
app.add_typer(catalogue.collections_app, name="collections")
app.add_typer(catalogue.documents_app, name="documents")
app.add_typer(config_commands.config_app, name="config")
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
app.add_typer(align.app, name="align")
app.add_typer(train_commands.app, name="train")
train_commands.app.command("sft")(finetune.sft)
train_commands.app.command("dpo")(finetune.dpo)


def main() -> None:
    try:
        app()
    except EmberError as exc:  # raised outside a command's user_errors(): still one line, not a traceback
        print_error(exc)
        raise SystemExit(EXIT_PARTIAL) from exc


if __name__ == "__main__":
    main()
