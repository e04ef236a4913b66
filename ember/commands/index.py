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
    from ember.platform import index_sync

    svc = service()
    with user_errors():
        total = len(index_sync.collection_chunk_ids(svc.db, collection))
        store = index_sync.index_store(svc.settings)
        with _progress(f"rebuild {collection}") as progress:
            task = progress.add_task("chunks", total=total)
            index = index_sync.rebuild(svc.db, store, collection, lambda n: progress.advance(task, n))
    console.print(
        f"index '{collection}': {len(index)} chunks, model {index.embedding_model}, {index.dense.kind}"
    )


@app.command("check")
def check(
    collection: list[str] = typer.Option([], "--collection", "-c", help="Collections (default: all)."),
    repair: bool = typer.Option(False, "--repair", help="Fix the drift found."),
) -> None:
    """Compare each index with SQL: chunks missing from the index, stale ones, orphaned index folders."""
    import shutil

    from ember.platform import index_sync

    svc = service()
    store = index_sync.index_store(svc.settings)
    with user_errors():
        names = collection or [c.name for c in svc.list_collections()]
        drifts = [index_sync.check(svc.db, store, name) for name in names]
    orphans = [] if collection else index_sync.orphaned_indexes(svc.db, store)
    table = Table(title="index check")
    for column in ("collection", "indexed", "missing", "stale", "state"):
        table.add_column(column)
    for drift in drifts:
        state = "ok" if drift.clean else ("repaired" if repair else "drift")
        indexed = len(store.get(drift.collection).chunk_ids())
        table.add_row(drift.collection, str(indexed), str(len(drift.missing)), str(len(drift.stale)), state)
    for orphan in orphans:
        table.add_row(orphan.name, "?", "–", "–", "removed (no collection)" if repair else "orphaned")
    if repair:
        for drift in drifts:
            if not drift.clean:
                with _progress(f"repair {drift.collection}") as progress:
                    task = progress.add_task("chunks", total=len(drift.missing))
                    index_sync.repair(svc.db, store, drift, lambda n, t=task: progress.advance(t, n))
        for orphan in orphans:
            shutil.rmtree(orphan)
    console.print(table)
    if not repair and (orphans or any(not d.clean for d in drifts)):
        err_console.print("drift found; run `ember index check --repair` to fix it")
        raise typer.Exit(1)
