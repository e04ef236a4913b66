"""`ember eval ...`: retrieval (BEIR), answers, agent, report, gate and all (ember.evals)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from ember.commands import eval_judge, eval_llm
from ember.commands.common import console, err_console

app = typer.Typer(no_args_is_help=True, help="Evaluation runners.")
app.command("llm")(eval_llm.llm)
app.add_typer(eval_judge.app, name="judge")


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


@contextmanager
def _eval_errors() -> Iterator[None]:
    """Bad input (a QA/task file, an unknown collection, a run folder) is one line and exit 2."""
    from ember.platform.errors import EmberError

    try:
        yield
    except (ValueError, EmberError) as exc:
        err_console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc


def _runs_dir() -> Path:
    from ember.evals.runs import default_runs_dir

    return default_runs_dir()


@app.command("answers")
def answers(
    qa_file: Path = typer.Argument(..., help="QA JSONL: id, question, answer, answer_type, relevant_ids."),
    collection: str = typer.Option(..., "-c", "--collection", help="Collection to answer from."),
    corpus: Path | None = typer.Option(None, "--corpus", help="BEIR corpus.jsonl ingested into it first."),
    concurrency: int = typer.Option(1, "--concurrency", min=1, help="Questions in flight (threads)."),
    resume: Path | None = typer.Option(None, "--resume", help="A run folder to finish, skipping done ids."),
    max_tokens: int = typer.Option(96, "--max-tokens", min=1),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N questions."),
    judge: eval_judge.JudgeTarget = None,
    judge_model: eval_judge.JudgeModel = None,
    judge_api_key: eval_judge.JudgeApiKey = None,
    judge_rubric: str = typer.Option("1-5", "--judge-rubric", help="The judge's rubric: 1-5 | pass/fail."),
    judge_max_tokens: eval_judge.JudgeMaxTokens = 96,
    judge_concurrency: int | None = typer.Option(
        None, "--judge-concurrency", min=1, help="Verdicts in flight (default: --concurrency)."
    ),
) -> None:
    """Grounded answers: match, F1, abstention, citation validity and support, gold recall, latency;
    with --judge, an LLM judge's grade of each answer against the gold one."""
    from ember.commands.common import service
    from ember.evals.suites import run_answers

    spec = eval_judge.judge_spec(judge, judge_model, judge_api_key, judge_max_tokens) if judge else None
    with _eval_errors():
        run = run_answers(
            service(),
            qa_file,
            collection,
            _runs_dir(),
            corpus,
            concurrency,
            resume,
            max_tokens,
            limit,
            spec,
            judge_rubric,
            judge_concurrency,
        )
    _print_summary(run)


@app.command("agent")
def agent(
    tasks_file: Path = typer.Argument(..., help="Task JSONL: id, task, answer, tolerance, needs."),
    collection: str = typer.Option(..., "-c", "--collection", help="Collection the agent searches."),
    samples: int = typer.Option(1, "--samples", "-k", min=1, help="Seeded samples per task (pass^k)."),
    temperature: float | None = typer.Option(
        None, "--temperature", help="Default 0, or 0.7 with --samples > 1."
    ),
    seed: int = typer.Option(0, "--seed", help="Sample i uses seed + i."),
    concurrency: int = typer.Option(1, "--concurrency", min=1),
    resume: Path | None = typer.Option(None, "--resume", help="A run folder to finish, skipping done ids."),
    max_tokens: int = typer.Option(96, "--max-tokens", min=1),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N tasks."),
) -> None:
    """Agent tasks: success within tolerance, tool use, repairs, fallbacks, loop guards, pass^k."""
    from ember.commands.common import service
    from ember.evals.suites import run_agent

    with _eval_errors():
        run = run_agent(
            service(),
            tasks_file,
            collection,
            _runs_dir(),
            samples,
            temperature,
            seed,
            concurrency,
            resume,
            max_tokens,
            limit,
        )
    _print_summary(run)


def _print_summary(run) -> None:  # noqa: ANN001 - RunFolder, imported lazily
    summary = run.read_summary()
    table = Table(title=f"{summary.get('suite')} · {summary.get('items')} items")
    table.add_column("metric")
    table.add_column("mean", justify="right")
    table.add_column("95% CI", justify="right")
    table.add_column("n", justify="right")
    for metric in summary.get("metrics", {}).values():
        scale, unit = (100, "%") if metric["share"] else (1, "")
        mean = "n/a" if metric["mean"] is None else f"{scale * metric['mean']:.1f}{unit}"
        ci = (
            ""
            if metric["ci_low"] is None
            else f"{scale * metric['ci_low']:.1f}–{scale * metric['ci_high']:.1f}"
        )
        table.add_row(metric["label"], mean, ci, str(metric["n"]))
    console.print(table)
    for key, value in summary.items():
        if key not in ("suite", "items", "metrics"):
            console.print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")
    console.print(f"run folder: {run.path}")


@app.command("rescore")
def rescore(run: Path = typer.Argument(..., help="An answers or agent run folder.")) -> None:
    """Score an answers or agent run again from its stored responses (a scorer fix), into a new run folder."""
    from ember.evals.rescore import rescore_run
    from ember.evals.runs import open_run

    with _eval_errors():
        rescored = rescore_run(open_run(_runs_dir(), "", {}, resume=run), _runs_dir())
    _print_summary(rescored)


@app.command("report")
def report(
    runs: list[Path] = typer.Argument(..., help="Run folders; runs of one suite are compared side by side."),
    out: Path = typer.Option(..., "--out", help="Folder for report.md, report.html and the plots."),
) -> None:
    """A Markdown and a self-contained HTML report with plots of one or more runs."""
    from ember.evals.report import build_report
    from ember.evals.runs import open_run

    with _eval_errors():
        md_path, html_path = build_report([open_run(_runs_dir(), "", {}, resume=r) for r in runs], out)
    console.print(f"wrote {md_path} and {html_path}")


@app.command("gate")
def gate(
    baseline: Path = typer.Option(..., "--baseline", help="The baseline run folder."),
    candidate: Path = typer.Option(..., "--candidate", help="The candidate run folder."),
    metrics: list[str] = typer.Option([], "--metric", help="Metric to check (repeatable; default: quality)."),
) -> None:
    """Exit 1 when a metric drops by more than its paired bootstrap 95% interval over shared items."""
    from ember.evals.gate import gate as run_gate
    from ember.evals.runs import open_run

    with _eval_errors():
        rows = run_gate(
            open_run(_runs_dir(), "", {}, resume=baseline),
            open_run(_runs_dir(), "", {}, resume=candidate),
            metrics,
        )
    table = Table(title=f"gate: {candidate.name} vs {baseline.name}")
    for column in ("metric", "items", "baseline", "candidate", "Δ", "95% CI of Δ", "verdict"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    for r in rows:
        table.add_row(
            r.label,
            str(r.items),
            f"{r.baseline:.3f}",
            f"{r.candidate:.3f}",
            f"{r.difference:+.3f}",
            f"[{r.ci_low:+.3f}, {r.ci_high:+.3f}]",
            "[red]REGRESSED[/red]" if r.regressed else "ok",
        )
    console.print(table)
    regressed = [r.metric for r in rows if r.regressed]
    console.print(
        f"gate failed: {', '.join(regressed)} regressed"
        if regressed
        else f"gate passed ({len(rows)} metrics)"
    )
    if regressed:
        raise typer.Exit(1)


@app.command("all")
def all_suites(
    config_file: Path = typer.Argument(..., help="TOML: [retrieval] [answers] [agent] [llm] [report]."),
) -> None:
    """Run every suite named in one TOML file and write one report."""
    from ember.commands.common import service
    from ember.evals.all_suites import run_all

    with _eval_errors():
        result = run_all(config_file, service, _runs_dir())
    for suite, run in result.runs.items():
        console.print(f"{suite}: {run.path}")
    for note in result.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}")
    console.print(f"report: {result.report} ({result.seconds:.0f} s)")
