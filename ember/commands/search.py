"""`ember search "query" -c NAME`: the retrieval pipeline from the command line (a single command)."""

from __future__ import annotations

import typer
from rich.table import Table

from ember.commands.common import console, err_console, service, user_errors

STAGES = ("bm25", "dense", "fused", "rerank")


def search(
    query: str = typer.Argument(..., help="What to look for."),
    collection: list[str] = typer.Option(..., "--collection", "-c", help="Collection(s) to search."),
    mode: str = typer.Option("hybrid+rerank", "--mode", "-m", help="bm25 | dense | hybrid | hybrid+rerank"),
    k: int = typer.Option(8, "-k", min=1, help="Number of hits."),
    explain: bool = typer.Option(False, "--explain", help="Show each stage's rank and score."),
) -> None:
    """Search with BM25, dense, hybrid (RRF) or hybrid + cross-encoder rerank; --explain shows every stage."""
    with user_errors():
        result = service().search(query, collection, k, mode)
    for note in result.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}")

    table = Table(title=f"{mode} · {result.timings_ms['total']:.0f} ms")
    for column in ("#", "score", "title", "location", "text"):
        table.add_column(column, overflow="fold")
    if explain:
        for stage in STAGES:
            table.add_column(stage, justify="right")
    for rank, hit in enumerate(result.hits, 1):
        row = [str(rank), f"{hit.score:.3f}", hit.title, hit.location, " ".join(hit.text.split())[:160]]
        if explain:
            row += [
                f"{hit.stages[s].rank} ({hit.stages[s].score:.3g})" if s in hit.stages else "–"
                for s in STAGES
            ]
        table.add_row(*row)
    console.print(table)
    if not result.hits:
        err_console.print("no hits (is the collection indexed? `ember index check`)")
