"""`ember train prepare|pretrain`: token shards from documents, and pretraining (from scratch or continued).

Under torchrun every process runs the same command:
``torchrun --nproc_per_node 2 -m ember.cli train pretrain ...``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, help="Train Ember's own LLMs: prepare token shards, pretrain.")
console = Console()


def _tokenizer(spec: str):
    """A tokenizer.json path, or an installed model (name or checkpoint path) whose tokenizer to use."""
    from ember.llm.imports.registry import resolve_model
    from ember.llm.inference.checkpoint import load_tokenizer
    from ember.llm.tokenizer import Tokenizer
    from ember.platform.settings import get_settings

    if Path(spec).is_file():
        return Tokenizer.load(spec)
    return load_tokenizer(resolve_model(spec, get_settings().models_dir))


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {error}")
    return typer.Exit(1)


@app.command()
def prepare(
    out: Annotated[Path, typer.Option("--out", "-o", help="Data directory to write (shards + index.json).")],
    inputs: Annotated[
        list[Path] | None,
        typer.Argument(help="Text/Markdown files, .jsonl, .parquet, or folders of them (or --collection)."),
    ] = None,
    tokenizer: Annotated[
        str, typer.Option(help="tokenizer.json path or installed model name.")
    ] = "smollm2-135m-instruct",
    field: Annotated[str, typer.Option(help="JSONL field holding the text.")] = "text",
    column: Annotated[str, typer.Option(help="Parquet column holding the text.")] = "text",
    collection: Annotated[
        str | None, typer.Option(help="Also take every document of this Ember collection.")
    ] = None,
    val_fraction: Annotated[float, typer.Option(help="Share of documents held out for validation.")] = 0.05,
    seed: Annotated[int, typer.Option(help="Seed of the train/val split.")] = 0,
) -> None:
    """Tokenize documents into uint16/uint32 token shards with a held-out validation split."""
    from ember.llm.training.prepare import prepare as run_prepare
    from ember.llm.training.sources import SourceError, iter_documents
    from ember.platform.errors import NotFoundError

    if not inputs and not collection:
        raise _fail(ValueError("nothing to prepare: give files or folders, or --collection NAME"))
    try:
        documents = iter_documents(inputs, field=field, column=column) if inputs else iter(())
        if collection:
            documents = _with_collection(documents, collection)
        index = run_prepare(documents, _tokenizer(tokenizer), out, val_fraction=val_fraction, seed=seed)
    except (SourceError, ValueError, FileNotFoundError, NotFoundError) as error:
        raise _fail(error) from error
    train, val = (sum(e["tokens"] for e in index["splits"][s]) for s in ("train", "val"))
    console.print(
        f"{index['documents']} documents, {train:,} train and {val:,} val tokens ({index['dtype']}) -> {out}"
    )


def _with_collection(documents, name: str):
    from ember.platform.errors import NotFoundError
    from ember.platform.service import EmberService

    service = EmberService()
    try:
        service.get_collection(name)  # an unknown name fails now, not after the files are tokenized
    except NotFoundError:
        service.close()
        raise
    return _then_collection(documents, service, name)


def _then_collection(documents, service, name: str):
    try:
        yield from documents
        yield from service.document_texts(name)
    finally:
        service.close()


@app.command()
def pretrain(
    data: Annotated[Path, typer.Option(help="Data directory from `ember train prepare`.")],
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Run directory: checkpoints, metrics, plot, model.")
    ],
    steps: Annotated[int, typer.Option(help="Optimizer steps.")] = 1000,
    depth: Annotated[int, typer.Option(help="Fresh model: layers (width 64 x depth unless --width).")] = 4,
    width: Annotated[int | None, typer.Option(help="Fresh model: hidden size (a multiple of 64).")] = None,
    init_from: Annotated[str | None, typer.Option(help="Continue pretraining this installed model.")] = None,
    seq_len: Annotated[int, typer.Option(help="Tokens per row.")] = 256,
    micro_batch: Annotated[int, typer.Option(help="Rows per forward pass, per process.")] = 8,
    batch_tokens: Annotated[int, typer.Option(help="Tokens per optimizer step, all processes.")] = 8192,
    optimizer: Annotated[str, typer.Option(help="muon (Muon on matrices + AdamW) or adamw.")] = "muon",
    lr: Annotated[float, typer.Option(help="AdamW learning rate.")] = 3e-3,
    matrix_lr: Annotated[float, typer.Option(help="Muon learning rate.")] = 0.02,
    weight_decay: Annotated[float, typer.Option()] = 0.0,
    warmup_steps: Annotated[int, typer.Option()] = 0,
    warmdown_frac: Annotated[float, typer.Option(help="Share of steps spent decaying the lr to 0.")] = 0.2,
    grad_clip: Annotated[float, typer.Option(help="0 turns clipping off.")] = 1.0,
    dtype: Annotated[
        str, typer.Option(help="auto (bf16 on CUDA and bf16-capable CPUs), bf16, fp32.")
    ] = "auto",
    compile_model: Annotated[
        bool, typer.Option("--compile/--no-compile", help="torch.compile the model.")
    ] = False,
    fsdp: Annotated[
        bool,
        typer.Option("--fsdp", help="Under torchrun: shard weights, gradients and optimizer state (FSDP)."),
    ] = False,
    seed: Annotated[int, typer.Option()] = 0,
    eval_every: Annotated[int, typer.Option(help="Steps between val bpb evaluations.")] = 100,
    val_tokens: Annotated[
        int | None, typer.Option(help="Score only the first N val tokens (all: 0).")
    ] = 65536,
    sample_every: Annotated[int, typer.Option(help="Steps between samples of the fixed prompts.")] = 0,
    prompt: Annotated[list[str] | None, typer.Option(help="A fixed prompt to sample (repeat).")] = None,
    checkpoint_every: Annotated[int, typer.Option(help="Steps between checkpoints.")] = 200,
    resume: Annotated[
        bool, typer.Option("--resume", help="Continue from the run's latest checkpoint.")
    ] = False,
    name: Annotated[str | None, typer.Option(help="Register the final model under this name.")] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda if available).")] = None,
    peak_tflops: Annotated[
        float | None, typer.Option(help="Device peak for MFU (default 989 on CUDA).")
    ] = None,
) -> None:
    """Pretrain a fresh model (--depth) or continue an installed one (--init-from) on token shards."""
    import os

    from ember.llm.imports.registry import install_checkpoint, resolve_model
    from ember.llm.training.checkpoints import CheckpointError
    from ember.llm.training.pretrain import pretrain as run_pretrain
    from ember.llm.training.shards import ShardError
    from ember.llm.training.trainer import TrainConfig
    from ember.platform.settings import get_settings

    settings = get_settings()
    config = TrainConfig(
        steps=steps,
        seq_len=seq_len,
        micro_batch=micro_batch,
        batch_tokens=batch_tokens,
        optimizer=optimizer,
        lr=lr,
        matrix_lr=matrix_lr,
        weight_decay=weight_decay,
        warmup_steps=warmup_steps,
        warmdown_frac=warmdown_frac,
        grad_clip=grad_clip,
        dtype=dtype,
        compile=compile_model,
        fsdp=fsdp,
        seed=seed,
        eval_every=eval_every,
        sample_every=sample_every,
        prompts=list(prompt or []),
        checkpoint_every=checkpoint_every,
        peak_tflops=peak_tflops,
    )
    try:
        source = resolve_model(init_from, settings.models_dir) if init_from else None
        summary = run_pretrain(
            data,
            out,
            config,
            depth=depth,
            width=width,
            init_from=source,
            resume=resume,
            val_tokens=val_tokens or None,
            device=device,
        )
    except (ShardError, CheckpointError, ValueError, FileNotFoundError) as error:
        raise _fail(error) from error
    if int(os.environ.get("RANK", "0")) != 0:
        return
    scores = [f"{v:.4f}" for v in (summary["val_bpb_before"], summary["val_bpb"]) if v is not None]
    bpb = f"val bpb {' -> '.join(scores)}; " if scores else ""
    console.print(
        f"{summary['parameters']:,} parameters, {summary['steps']} steps; {bpb}curves {out / 'curves.png'}"
    )
    if name:
        target = install_checkpoint(Path(summary["model_dir"]), name, settings.models_dir, force=True)
        console.print(f"registered {name!r} at {target}")
