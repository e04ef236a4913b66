"""`ember retrieval train-reranker`: fine-tune a cross-encoder on pairs mined from a collection."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ember.commands.common import console, err_console, service, user_errors

app = typer.Typer(no_args_is_help=True, help="Retrieval models: reranker training.")


@app.command("train-reranker")
def train_reranker(
    collection: str = typer.Option(..., "--collection", "-c", help="Collection to mine training pairs from."),
    base: str = typer.Option("sentence-transformers/all-MiniLM-L6-v2", "--base", help="Encoder checkpoint."),
    name: str = typer.Option(
        "default", "--name", help="Saved as EMBER_HOME/models/rerankers/NAME ('default' is used by search)."
    ),
    epochs: int = typer.Option(1, "--epochs", min=1),
    batch_size: int = typer.Option(
        4, "--batch-size", min=1, help="Queries per step (each with its negatives)."
    ),
    negatives: int = typer.Option(7, "--negatives", min=1, help="BM25 hard negatives per query."),
    layers: int | None = typer.Option(
        None, "--layers", min=1, help="Keep the base encoder's first N layers (faster reranker)."
    ),
    learning_rate: float = typer.Option(3e-5, "--lr"),
    max_length: int = typer.Option(128, "--max-length", min=16, help="Tokens per pair, here and at search."),
    max_queries: int | None = typer.Option(None, "--max-queries", help="Cap training queries (CPU budget)."),
    heldout: float = typer.Option(0.2, "--heldout", min=0.0, max=0.9, help="Fraction of documents held out."),
    max_heldout: int = typer.Option(200, "--max-heldout", min=1, help="Cap held-out queries (CPU budget)."),
) -> None:
    """Synthetic queries (titles, headings, sentences) with BM25 hard negatives; reports the held-out gain."""
    from ember.platform.types import RerankerOptions

    options = RerankerOptions(
        base=base,
        epochs=epochs,
        batch_size=batch_size,
        negatives=negatives,
        layers=layers,
        learning_rate=learning_rate,
        max_length=max_length,
        max_queries=max_queries,
        heldout=heldout,
        max_heldout=max_heldout,
    )
    with (
        user_errors(),
        Progress(
            TextColumn("[bold]train-reranker[/bold]"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("loss {task.fields[loss]:.4f}"),
            TimeElapsedColumn(),
            console=err_console,
        ) as progress,
    ):
        task = progress.add_task("steps", total=None, loss=float("nan"))

        def on_step(step: int, total: int, loss: float) -> None:
            progress.update(task, completed=step, total=total, loss=loss)

        trained = service().train_reranker(collection, name, options, on_step)
    report, output = trained.report, trained.path
    table = Table(title=f"reranker saved to {output}")
    table.add_column("held-out (hybrid top-30)")
    for metric in ("mrr@10", "ndcg@10"):
        table.add_column(metric, justify="right")
    table.add_row(
        "hybrid order", *(f"{report.before.get(m, float('nan')):.4f}" for m in ("mrr@10", "ndcg@10"))
    )
    table.add_row(
        "cross-encoder alone", *(f"{report.after.get(m, float('nan')):.4f}" for m in ("mrr@10", "ndcg@10"))
    )
    table.add_row(
        f"blended, weight {report.blend_weight:.1f} (saved)",
        *(f"{report.blended.get(m, float('nan')):.4f}" for m in ("mrr@10", "ndcg@10")),
    )
    console.print(table)
    console.print(
        f"{report.train_queries} training queries, {report.heldout_queries} held-out; "
        f"loss {report.losses[0]:.4f} → {report.losses[-1]:.4f}. Use it: EMBER_RERANKER={output}"
    )
