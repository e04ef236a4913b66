"""`ember align rag -c COLLECTION`: teach the local model to answer from a collection's documents."""

from __future__ import annotations

from typing import Annotated, Literal

import typer
from rich.console import Console
from rich.table import Table

from ember.platform.alignment.budget import AlignBudget

app = typer.Typer(no_args_is_help=True, help="Align the local model to your documents (SFT + DPO with LoRA).")
console = Console()


@app.command()
def rag(
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection to learn from.")],
    name: Annotated[
        str | None, typer.Option("--name", help="Model to install (default: <base>-<collection>).")
    ] = None,
    base: Annotated[
        str | None, typer.Option("--base", help="Model to start from (default: llm_model).")
    ] = None,
    questions: Annotated[
        int, typer.Option(min=1, help="Synthesised questions (plus abstentions and traces).")
    ] = AlignBudget.questions,
    sft_steps: Annotated[int, typer.Option(min=1, help="SFT steps.")] = AlignBudget.sft_steps,
    dpo_steps: Annotated[int, typer.Option(min=1, help="DPO steps.")] = AlignBudget.dpo_steps,
    batch_size: Annotated[
        int, typer.Option(min=1, help="Rows (SFT) or pairs (DPO) per step.")
    ] = AlignBudget.batch_size,
    passages: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Passages per synthesised prompt (fewer if too long); default: the rag_passages setting.",
        ),
    ] = AlignBudget.passages,
    focus_sentences: Annotated[
        int | None,
        typer.Option(
            min=0,
            help="Sentences each synthesised prompt keeps, as answers do; default: the "
            "rag_focus_sentences setting (0: whole passages).",
        ),
    ] = AlignBudget.focus_sentences,
    rejections_from: Annotated[
        Literal["sft", "base"],
        typer.Option(
            help="Whose failing samples DPO rejects: the SFT model's (on-policy) or the starting model's.",
        ),
    ] = AlignBudget.rejections_from,
    eval_items: Annotated[
        int, typer.Option(min=1, help="Held-out questions answered by both models.")
    ] = AlignBudget.eval_items,
    seed: Annotated[int, typer.Option(help="Seed of synthesis, data order and adapters.")] = AlignBudget.seed,
) -> None:
    """Synthesise cited answers, abstentions and agent traces from the collection, SFT then DPO a LoRA
    adapter, install it, and compare both models on questions from held-out documents."""
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ember.commands.common import service, user_errors
    from ember.platform.alignment.recipe import align_rag

    budget = AlignBudget(
        questions=questions,
        sft_steps=sft_steps,
        dpo_steps=dpo_steps,
        batch_size=batch_size,
        passages=passages,
        focus_sentences=focus_sentences,
        rejections_from=rejections_from,
        eval_items=eval_items,
        seed=seed,
    )
    with user_errors():
        svc = service()
        base_name = base or svc.settings.llm_model
        target = name or f"{base_name.rstrip('/').split('/')[-1]}-{collection}"
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total}"),
            TextColumn("{task.fields[info]}"),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=console) as bars:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int, metrics: dict) -> None:
                if stage not in tasks:
                    tasks[stage] = bars.add_task(stage, total=total, info="")
                shown = {
                    k: v
                    for k, v in metrics.items()
                    if k in ("loss", "rewards/accuracies", "rag", "cites_gold")
                }
                info = " ".join(
                    f"{k} {v:.3f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()
                )
                bars.update(tasks[stage], completed=done, info=info)

            result = align_rag(svc, collection, target, base, budget, progress)
    table = Table(title=f"held-out documents of '{collection}' ({eval_items} questions at most)")
    table.add_column("check")
    table.add_column(base_name)
    table.add_column(target)
    for check in result.before:
        table.add_row(check, f"{result.before[check]:.0%}", f"{result.after[check]:.0%}")
    console.print(table)
    console.print(
        f"data {result.counts}; "
        f"SFT loss {result.sft_loss[0]:.3f} -> {result.sft_loss[1]:.3f} (first / last tenth of the steps); "
        f"DPO reward accuracy {result.dpo_accuracy[0]:.2f} -> {result.dpo_accuracy[1]:.2f}; "
        f"installed {target!r} (base + LoRA); "
        f"run files in {result.run_dir}",
        soft_wrap=True,
    )
