"""`ember eval retrieval DATASET_DIR`: BEIR-format retrieval evaluation over every search mode."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ember.commands.common import console, err_console

app = typer.Typer(no_args_is_help=True, help="Evaluation runners.")


@app.command("retrieval")
def retrieval(
    dataset_dir: Path = typer.Argument(
        ..., help="BEIR directory: queries.jsonl, qrels/*.tsv (corpus.jsonl)."
    ),
    corpus: Path | None = typer.Option(None, "--corpus", help="corpus.jsonl shared by several sets."),
    modes: list[str] = typer.Option(
        ["bm25", "dense", "hybrid", "hybrid+rerank"], "--modes", "--mode", help="Modes to run (repeatable)."
    ),
    reranker: str | None = typer.Option(
        None, "--reranker", help="Reranker name/path (default: the configured one)."
    ),
    out: Path = typer.Option(Path("runs/eval"), "--out", help="Where the JSON and Markdown reports go."),
    split: str | None = typer.Option(None, "--split", help="qrels file stem (default: all qrels/*.tsv)."),
    fusion: str = typer.Option("convex", "--fusion", help="rrf | convex"),
    dense_weight: float = typer.Option(0.3, "--dense-weight", min=0.0, max=1.0, help="For convex fusion."),
    keep_index: str | None = typer.Option(
        None, "--keep-index", help="Keep the corpus index as EMBER_HOME/indexes/NAME (reused when present)."
    ),
) -> None:
    """Index the corpus, run each mode over the queries; nDCG@10, Recall@10/50, MRR@10, latency p50/p95."""
    from ember.evals.beir import load_beir
    from ember.evals.retrieval_runner import COLUMNS, run_retrieval_eval, write_report
    from ember.platform.settings import get_settings
    from ember.retrieval.retriever import RetrievalConfig

    settings = get_settings()
    try:
        dataset = load_beir(dataset_dir, corpus, split)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    model = settings.reranker_path(reranker) if "hybrid+rerank" in modes else None
    index_dir = settings.indexes_dir / keep_index if keep_index else None
    with Progress(
        TextColumn("[bold]{task.description}[/bold]"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        tasks: dict[str, int] = {}

        def on_query(mode: str) -> None:
            if mode not in tasks:
                tasks[mode] = progress.add_task(mode, total=len(dataset.queries))
            progress.advance(tasks[mode])

        try:
            report = run_retrieval_eval(
                dataset,
                modes,
                model,
                settings.embedding_model,
                index_dir=index_dir,
                config=RetrievalConfig(fusion=fusion, dense_weight=dense_weight),
                on_query=on_query,
            )
        except ValueError as exc:
            err_console.print(f"[red]error:[/red] {exc}")
            raise typer.Exit(2) from exc
    for note in report.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}")
    title = f"{report.dataset}: {report.queries} queries, {report.documents} docs, {report.passages} passages"
    table = Table(title=title)
    table.add_column("mode")
    for column in (*COLUMNS, "p50 ms", "p95 ms"):
        table.add_column(column, justify="right")
    for r in report.results:
        table.add_row(
            r.mode,
            *(f"{r.metrics[c]:.4f}" for c in COLUMNS),
            f"{r.latency_ms_p50:.1f}",
            f"{r.latency_ms_p95:.1f}",
        )
    console.print(table)
    json_path, md_path = write_report(report, out)
    console.print(f"wrote {json_path} and {md_path}")
