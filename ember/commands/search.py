"""`ember search "query" -c NAME`: the retrieval pipeline from the command line (a single command)."""

from __future__ import annotations

import typer
from rich.table import Table

from ember.commands.common import console, err_console, user_errors


def search(
    query: str = typer.Argument(..., help="What to look for."),
    collection: list[str] = typer.Option(..., "--collection", "-c", help="Collection(s) to search."),
    mode: str = typer.Option("hybrid+rerank", "--mode", "-m", help="bm25 | dense | hybrid | hybrid+rerank"),
    k: int = typer.Option(8, "-k", min=1, help="Number of hits."),
    reranker: str | None = typer.Option(
        None, "--reranker", help="Reranker name or path (default EMBER_RERANKER)."
    ),
    explain: bool = typer.Option(False, "--explain", help="Show each stage's rank and score."),
) -> None:
    """Search with BM25, dense, hybrid (RRF) or hybrid + cross-encoder rerank; --explain shows every stage."""
    from ember.platform.index_sync import index_store, reranker_path
    from ember.platform.settings import get_settings
    from ember.retrieval.collection_index import IndexModelMismatch
    from ember.retrieval.rerank import Reranker
    from ember.retrieval.retriever import MODES, Retriever

    if mode not in MODES:
        err_console.print(f"[red]error:[/red] --mode must be one of {', '.join(MODES)}; got {mode!r}")
        raise typer.Exit(2)
    settings = get_settings()
    store = index_store(settings)
    for name in collection:
        if not store.get(name).exists:
            err_console.print(
                f"[red]error:[/red] collection '{name}' has no index; run `ember index rebuild -c {name}`"
            )
            raise typer.Exit(1)
    model = reranker_path(settings, reranker) if mode == "hybrid+rerank" else None
    with user_errors():
        try:
            result = Retriever(store, Reranker(model) if model else None).run(query, collection, k, mode=mode)
        except IndexModelMismatch as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(1) from exc
    for note in result.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}")

    table = Table(title=f"{mode} · {result.timings_ms['total']:.0f} ms")
    for column in ("#", "score", "title", "location", "text"):
        table.add_column(column, overflow="fold")
    stages = ("bm25", "dense", "fused", "rerank")
    if explain:
        for stage in stages:
            table.add_column(stage, justify="right")
    for rank, hit in enumerate(result.hits, 1):
        snippet = " ".join(hit.text.split())[:160]
        row = [str(rank), f"{hit.score:.3f}", hit.title, hit.location, snippet]
        if explain:
            row += [
                f"{hit.stages[s].rank} ({hit.stages[s].score:.3g})" if s in hit.stages else "–"
                for s in stages
            ]
        table.add_row(*row)
    console.print(table)
