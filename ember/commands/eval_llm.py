"""`ember eval llm`: bits per byte and multiple-choice accuracy of the language model itself."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from ember.commands.common import console, err_console, user_errors


@contextmanager
def eval_input_errors() -> Iterator[None]:
    """A bad file, run folder or option is one line and exit 2; a missing model or collection exit 1."""
    from ember.platform.errors import InvalidInputError

    with user_errors():
        try:
            yield
        except ValueError as exc:  # dataset and run-folder checks raise ValueError with the file named
            raise InvalidInputError(str(exc)) from exc


def llm(
    texts: list[str] = typer.Argument(None, help="Text files, folders (.txt, .md) or quoted globs."),
    collection: str | None = typer.Option(None, "-c", "--collection", help="Score this collection's chunks."),
    mcq: Path | None = typer.Option(
        None, "--mcq", help="Multiple-choice JSONL: id, question, choices, answer (index or letter)."
    ),
    builtin_mcq: bool = typer.Option(
        False, "--builtin-mcq", help="Ember's own MCQ set (facts from its docs)."
    ),
    model: str | None = typer.Option(
        None, "--model", "-m", help="Installed model or path (default: llm_model)."
    ),
    quantize: str | None = typer.Option(
        None, "--quantize", help="none | int8 | int4 (default: the checkpoint as stored)."
    ),
    resume: Path | None = typer.Option(None, "--resume", help="A run folder to finish, skipping done items."),
) -> None:
    """Bits per byte (special tokens excluded, one definition for fp32/int8/int4) and MCQ acc / acc_norm."""
    from ember.commands.common import service
    from ember.evals.llm_suite import BUILTIN_MCQ, run_llm_suite
    from ember.evals.runs import default_runs_dir

    if builtin_mcq and mcq is not None:
        err_console.print("[red]error:[/red] give --mcq or --builtin-mcq, not both")
        raise typer.Exit(2)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with eval_input_errors(), Progress(*columns, console=err_console, transient=True) as bars:
        tasks: dict[str, int] = {}

        def progress(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bars.add_task(task, total=total)
            bars.update(tasks[task], completed=done)

        summary = run_llm_suite(
            service(),
            texts=texts or None,
            collection=collection,
            mcq=BUILTIN_MCQ if builtin_mcq else mcq,
            model=model,
            quantize=quantize,
            runs_dir=default_runs_dir(),
            resume=resume,
            progress=progress,
        )
    console.print(f"model: {summary['model']} ({summary['quantization']})")
    if "bpb" in summary:
        console.print(
            f"bits per byte: {summary['bpb']:.4f} "
            f"over {summary['bpb_texts']} texts, {summary['bpb_bytes']:,} bytes"
        )
    if "mcq_acc" in summary:
        console.print(
            f"multiple choice: acc {summary['mcq_acc']:.3f}, acc_norm {summary['mcq_acc_norm']:.3f} "
            f"({summary['mcq_questions']} questions)"
        )
    console.print(f"run folder: {summary['run_dir']}")
