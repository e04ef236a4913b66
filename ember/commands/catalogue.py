"""`ember ingest`, `ember collections ...` and `ember documents list`."""

from __future__ import annotations

import time

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ember.commands.common import EXIT_PARTIAL, console, err_console, service, user_errors

collections_app = typer.Typer(no_args_is_help=True, help="List, inspect, rename and delete collections.")
documents_app = typer.Typer(no_args_is_help=True, help="Inspect the documents of a collection.")


def ingest(
    path: str = typer.Argument(..., help="A folder, a glob (quote it) or a single file."),
    collection: str = typer.Option(..., "--collection", "-c", help="Collection to ingest into."),
    chunk_size: int | None = typer.Option(
        None, "--chunk-size", min=16, help="Tokens per chunk (default 384)."
    ),
    overlap: int | None = typer.Option(
        None, "--overlap", min=0, help="Tokens shared by neighbours (default 64)."
    ),
    glob: str | None = typer.Option(None, "--glob", help="Only files matching this pattern, e.g. '*.md'."),
    no_delete: bool = typer.Option(False, "--no-delete", help="Keep documents whose files are gone."),
    json_field: list[str] = typer.Option([], "--json-field", help="Glob over JSON key paths to index."),
) -> None:
    """Load, chunk and store documents; re-runs only redo files whose content changed."""
    from ember.platform.ingest.pipeline import IngestOptions

    options = IngestOptions(chunk_size, overlap, not no_delete, tuple(json_field))
    progress = Progress(
        TextColumn("[bold]ingest[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("files · {task.fields[chunks]} chunks · {task.fields[indexed]} indexed"),
        TextColumn("· {task.fields[rate]}"),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    )
    started = time.perf_counter()
    totals = {"chunks": 0, "bytes": 0}

    def on_start(files: int) -> None:
        progress.add_task("ingest", total=files, chunks=0, indexed=0, rate="")

    def on_file(result) -> None:  # noqa: ANN001
        totals["chunks"] += result.chunks if result.outcome in ("added", "updated") else 0
        totals["bytes"] += result.size_bytes
        rate = totals["bytes"] / 2**20 / max(time.perf_counter() - started, 1e-6)
        advance = 0 if result.outcome == "removed" else 1
        progress.update(
            progress.task_ids[0], advance=advance, chunks=totals["chunks"], rate=f"{rate:.1f} MB/s"
        )

    def on_indexed(chunks: int) -> None:
        task = progress.tasks[0]
        progress.update(task.id, indexed=task.fields["indexed"] + chunks)

    with user_errors(), progress:
        report = service().ingest(path, collection, options, glob, on_file, on_start, on_indexed)

    table = Table(title=f"Ingested into '{report.collection}' (job {report.job_id}) in {report.seconds:.2f}s")
    for outcome in report.counts:
        table.add_column(outcome, justify="right")
    table.add_column("chunks written", justify="right")
    table.add_row(*(str(n) for n in report.counts.values()), str(report.chunks_written))
    console.print(table)
    if repair := report.index_repair:
        console.print(
            f"index repaired: {len(repair.missing)} committed chunks an interrupted run had left out of the "
            f"search index were indexed, {len(repair.stale)} stale ones removed"
        )
    for result in report.results:
        if result.outcome in ("failed", "skipped"):
            style = "red" if result.outcome == "failed" else "yellow"
            console.print(f"[{style}]{result.outcome}[/{style}] {result.reason}")
    if report.failed:
        raise typer.Exit(EXIT_PARTIAL)


@collections_app.command("list")
def collections_list() -> None:
    """Every collection with its size."""
    with user_errors():
        rows = service().list_collections()
    table = Table("name", "documents", "chunks", "tokens", "chunking", "created")
    for c in rows:
        table.add_row(
            c.name,
            str(c.documents),
            str(c.chunks),
            str(c.tokens),
            f"{c.chunk_size}/{c.chunk_overlap}",
            c.created_at.strftime("%Y-%m-%d %H:%M"),
        )
    console.print(table)


@collections_app.command("show")
def collections_show(name: str) -> None:
    """One collection in detail."""
    with user_errors():
        c = service().get_collection(name)
    table = Table(show_header=False)
    for key, value in vars(c).items():
        table.add_row(key, str(value))
    console.print(table)


@collections_app.command("delete")
def collections_delete(name: str, yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask.")) -> None:
    """Delete a collection with its documents and chunks."""
    if not yes:
        typer.confirm(f"Delete collection '{name}' and all its documents?", abort=True)
    with user_errors():
        service().delete_collection(name)
    console.print(f"deleted collection '{name}'")


@collections_app.command("rename")
def collections_rename(old: str, new: str) -> None:
    """Rename a collection."""
    with user_errors():
        service().rename_collection(old, new)
    console.print(f"renamed '{old}' to '{new}'")


@documents_app.command("list")
def documents_list(collection: str = typer.Option(..., "--collection", "-c")) -> None:
    """The documents of a collection."""
    with user_errors():
        rows = service().list_documents(collection)
    table = Table("id", "title", "type", "KB", "chunks", "source")
    for d in rows:
        table.add_row(
            str(d.id),
            d.title[:60],
            d.mime_type.split("/")[-1][:12],
            f"{d.size_bytes / 1024:.1f}",
            str(d.chunks),
            d.source_uri,
        )
    console.print(table)


def sample(collection: str = typer.Option("sample", "--collection", "-c")) -> None:
    """Ingest the sample collection (Python's reference topics and Ember's docs) and summarise it."""
    from ember.platform.samples import export_python_reference, project_docs

    svc = service()
    sources = [export_python_reference(svc.settings.home / "samples" / "python-reference")]
    if docs := project_docs():
        sources.append(docs)
    failed = 0
    with user_errors():
        for source in sources:
            with err_console.status(f"ingesting {source}"):
                report = svc.ingest(str(source), collection)
            failed += len(report.failed)
            counts = ", ".join(f"{n} {k}" for k, n in report.counts.items() if n) or "no files"
            console.print(f"{source}: {counts} in {report.seconds:.1f}s")
        summary = svc.get_collection(collection)
    table = Table(title=f"Collection '{summary.name}'")
    for column in ("documents", "chunks", "tokens", "chunk size", "overlap"):
        table.add_column(column, justify="right")
    table.add_row(
        *map(
            str,
            (summary.documents, summary.chunks, summary.tokens, summary.chunk_size, summary.chunk_overlap),
        )
    )
    console.print(table)
    if failed:
        raise typer.Exit(EXIT_PARTIAL)
