"""`ember train sft` and `ember train dpo`: fine-tune an installed model on TRL-format JSONL, with LoRA by
default, and install the result under a new name."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

console = Console()

Base = Annotated[
    str | None, typer.Option("--base", help="Installed model to start from (default: llm_model).")
]
Name = Annotated[str, typer.Option("--name", help="Name to install the tuned model under.")]
Lora = Annotated[int, typer.Option("--lora", help="LoRA rank; 0 fine-tunes every weight.")]
LoraAlpha = Annotated[float, typer.Option(help="LoRA alpha (scaling alpha / rank).")]
LoraDropout = Annotated[float, typer.Option(help="Dropout on the LoRA input.")]
Steps = Annotated[int, typer.Option(help="Optimizer steps.")]
Batch = Annotated[int, typer.Option("--batch-size", help="Rows (SFT) or pairs (DPO) per step.")]
Lr = Annotated[
    float,
    typer.Option("--lr", help="Peak learning rate (after a short warmup; linear decay over the last 20%)."),
]
SeqLen = Annotated[int, typer.Option(help="Longest row in tokens (SFT packs conversations into rows).")]
Merge = Annotated[bool, typer.Option("--merge", help="Install merged weights instead of base + adapter.")]
Resume = Annotated[bool, typer.Option("--resume", help="Continue the run saved under the same --name.")]
Seed = Annotated[int, typer.Option(help="Seed of the data order and the adapters' initialisation.")]


def _run(
    kind: str,
    base: str | None,
    name: str,
    lora: tuple[int, float, float],
    schedule: tuple[int, int, float, int, int],
    merge: bool,
    resume: bool,
    train,
) -> None:
    """Load the base, train with ``train(model, tokenizer, config, run_dir, on_step)``, install as ``name``.

    ``lora`` is (rank, alpha, dropout); ``schedule`` is (steps, batch size, lr, seq len, seed)."""
    import shutil

    import torch
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from ember.llm.imports.registry import resolve_model
    from ember.llm.training.jsonl import DataError
    from ember.llm.training.lora import LoraSpec
    from ember.llm.training.tune import finetune_config, starting_model
    from ember.llm.training.tuned_models import install_tuned
    from ember.platform.settings import get_settings

    config = finetune_config(*schedule)
    rank, alpha, dropout = lora
    settings = get_settings()
    base = base or settings.llm_model
    run_dir = settings.home / "runs" / name
    if run_dir.exists() and not resume:
        shutil.rmtree(run_dir)
    torch.manual_seed(config.seed)
    try:
        base_dir = resolve_model(base, settings.models_dir)
        spec = LoraSpec(rank=rank, alpha=alpha, dropout=dropout) if rank else None
        with console.status(f"loading {base}"):
            model, tokenizer, spec, root = starting_model(base_dir, spec)
        started = time.perf_counter()
        with Progress(
            TextColumn(f"{kind} {name}"),
            BarColumn(),
            TextColumn("{task.completed}/{task.total} {task.fields[info]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
        ) as progress:
            task = progress.add_task(kind, total=config.steps, info="")

            def on_step(record: dict) -> None:
                shown = {
                    k: v for k, v in record.items() if k in ("loss", "rewards/accuracies", "rewards/margins")
                }
                info = " ".join(f"{k} {v:.3f}" for k, v in shown.items())
                progress.update(task, completed=record["step"], info=info)

            history = train(model, tokenizer, config, run_dir, on_step)
        seconds = time.perf_counter() - started
        target = install_tuned(model, tokenizer, settings.models_dir / name, root, spec, merge)
    except (DataError, ValueError, FileNotFoundError) as error:
        console.print(f"[red]error:[/red] {error}", soft_wrap=True)
        raise typer.Exit(1) from error
    first, last = history[0], history[-1]
    summary = f"loss {first['loss']:.4f} -> {last['loss']:.4f}"
    if "rewards/accuracies" in last:
        summary += f", reward accuracy {first['rewards/accuracies']:.2f} -> {last['rewards/accuracies']:.2f}"
    kind_of = "adapter on " + root.name if spec is not None and not merge else "model"
    console.print(f"{summary} in {seconds:.0f} s; installed {kind_of} as {name!r} ({target})", soft_wrap=True)


def sft(
    data: Annotated[Path, typer.Argument(help="JSONL of TRL conversations: messages (and tools).")],
    name: Name,
    base: Base = None,
    lora: Lora = 16,
    lora_alpha: LoraAlpha = 32.0,
    lora_dropout: LoraDropout = 0.0,
    steps: Steps = 100,
    batch_size: Batch = 4,
    lr: Lr = 2e-4,
    seq_len: SeqLen = 1024,
    merge: Merge = False,
    resume: Resume = False,
    seed: Seed = 0,
) -> None:
    """Supervised fine-tuning on the assistant turns of conversations (tool calls included)."""
    from ember.llm.training.sft import train_sft
    from ember.llm.training.sft_data import load_sft

    def train(model, tokenizer, config, run_dir, on_step):
        return train_sft(model, tokenizer, load_sft(data, tokenizer, seq_len), config, run_dir, on_step)

    lora_spec, schedule = (lora, lora_alpha, lora_dropout), (steps, batch_size, lr, seq_len, seed)
    _run("sft", base, name, lora_spec, schedule, merge, resume, train)


def dpo(
    data: Annotated[Path, typer.Argument(help="JSONL of TRL preference pairs: prompt, chosen, rejected.")],
    name: Name,
    base: Base = None,
    beta: Annotated[
        float, typer.Option(help="DPO beta: how far the policy may move from the reference.")
    ] = 0.1,
    lora: Lora = 16,
    lora_alpha: LoraAlpha = 32.0,
    lora_dropout: LoraDropout = 0.0,
    steps: Steps = 100,
    batch_size: Batch = 4,
    lr: Lr = 5e-5,
    seq_len: SeqLen = 1024,
    merge: Merge = False,
    resume: Resume = False,
    seed: Seed = 0,
) -> None:
    """Direct preference optimisation against the starting model (or precomputed reference log-probs)."""
    from ember.llm.training.dpo_data import load_pairs
    from ember.llm.training.dpo_train import train_dpo

    def train(model, tokenizer, config, run_dir, on_step):
        pairs = load_pairs(data, tokenizer, seq_len)
        return train_dpo(model, tokenizer, pairs, config, run_dir, beta, on_step)

    lora_spec, schedule = (lora, lora_alpha, lora_dropout), (steps, batch_size, lr, seq_len, seed)
    _run("dpo", base, name, lora_spec, schedule, merge, resume, train)
