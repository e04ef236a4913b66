"""`ember index rebuild|check`: the per-collection BM25 + FAISS indexes against SQL, the source of truth."""

from __future__ import annotations

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ember.commands.common import console, err_console, service, user_errors

app = typer.Typer(no_args_is_help=True, help="Rebuild and check the search indexes.")


def _progress(label: str) -> Progress:
    return Progress(
        TextColumn(f"[bold]{label}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    )


@app.command("rebuild")
def rebuild(collection: str = typer.Option(..., "--collection", "-c", help="Collection to rebuild.")) -> None:
    """Re-embed and re-index a collection from SQL (also after changing the embedding model)."""
    with user_errors(), _progress(f"rebuild {collection}") as progress:
        task = progress.add_task("chunks", total=None)
        rebuilt = service().rebuild_index(
            collection,
            on_start=lambda total: progress.update(task, total=total),
            on_batch=lambda n: progress.advance(task, n),
        )
    model, kind = rebuilt.embedding_model, rebuilt.dense_kind
    console.print(f"index '{collection}': {rebuilt.chunks} chunks, model {model}, {kind}")


@app.command("check")
def check(
    collection: list[str] = typer.Option([], "--collection", "-c", help="Collections (default: all)."),
    repair: bool = typer.Option(False, "--repair", help="Fix the drift found."),
) -> None:
    """Compare each index with SQL: chunks missing from the index, stale ones, orphaned index folders."""
    svc = service()
    with user_errors():
        found = svc.check_indexes(collection)
    table = Table(title="index check")
    for column in ("collection", "indexed", "missing", "stale", "state"):
        table.add_column(column)
    for drift in found.drifts:
        state = "ok" if drift.clean else ("repaired" if repair else "drift")
        table.add_row(
            drift.collection, str(drift.indexed), str(len(drift.missing)), str(len(drift.stale)), state
        )
    for orphan in found.orphans:
        table.add_row(orphan, "?", "–", "–", "removed (no collection)" if repair else "orphaned")
    if repair:
        for drift in found.drifts:
            if not drift.clean:
                with _progress(f"repair {drift.collection}") as progress:
                    task = progress.add_task("chunks", total=len(drift.missing))
                    svc.repair_index(drift, lambda n, t=task: progress.advance(t, n))
        for orphan in found.orphans:
            svc.remove_orphaned_index(orphan)
    console.print(table)
    if not repair and (found.orphans or any(not d.clean for d in found.drifts)):
        err_console.print("drift found; run `ember index check --repair` to fix it")
        raise typer.Exit(1)
