"""`ember models pull|import|quantize|export|list|show`: install and inspect local LLM checkpoints."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="Install and inspect local LLM checkpoints (home/models).")
console = Console()


def _models_dir() -> Path:
    from ember.platform.settings import get_settings

    return get_settings().models_dir


def _fail(error: Exception) -> typer.Exit:
    console.print(f"[red]error:[/red] {error}")
    return typer.Exit(1)


@app.command()
def pull(
    name: Annotated[str, typer.Argument(help="smollm2-135m-instruct, or an HF hub repo id owner/repo.")],
    force: Annotated[bool, typer.Option(help="Reinstall even if present.")] = False,
) -> None:
    """Download a model and convert it into Ember's format."""
    from ember.llm.imports.registry import pull_model

    with console.status(f"pulling {name}"):
        try:
            path = pull_model(name, _models_dir(), force=force)
        except (ValueError, FileNotFoundError) as error:
            raise _fail(error) from error
    console.print(f"installed [bold]{name}[/bold] at {path}")


@app.command("import")
def import_(
    source: Annotated[Path, typer.Argument(help="A .gguf file or an HF Llama safetensors directory.")],
    name: Annotated[str, typer.Option(help="Name in home/models.")],
    force: Annotated[bool, typer.Option(help="Replace an existing model of that name.")] = False,
) -> None:
    """Convert a local GGUF file or HF checkpoint into Ember's format."""
    from ember.llm.imports.registry import import_model

    with console.status(f"importing {source}"):
        try:
            path = import_model(source, name, _models_dir(), force=force)
        except (ValueError, FileNotFoundError, FileExistsError) as error:
            raise _fail(error) from error
    console.print(f"installed [bold]{name}[/bold] at {path}")


@app.command()
def quantize(
    name: Annotated[str, typer.Argument(help="An installed model.")],
    mode: Annotated[str, typer.Option(help="int8 (per channel) or int4 (groupwise).")] = "int8",
    out: Annotated[str | None, typer.Option(help="New model name (default NAME-MODE).")] = None,
    group_size: Annotated[int, typer.Option(help="int4 group size.")] = 32,
) -> None:
    """Write a weight-only quantized copy of an installed model."""
    from ember.llm.imports.registry import quantize_installed

    with console.status(f"quantizing {name} to {mode}"):
        try:
            path = quantize_installed(name, mode, _models_dir(), out, group_size)
        except (ValueError, FileNotFoundError) as error:
            raise _fail(error) from error
    console.print(f"installed [bold]{path.name}[/bold] at {path}")


@app.command()
def export(
    name: Annotated[str, typer.Argument(help="An installed model name or checkpoint path.")],
    gguf: Annotated[Path, typer.Option(help="The GGUF file to write (runs in llama.cpp, Ollama).")],
    gguf_type: Annotated[str, typer.Option("--type", help="f16, q8_0, q4_0 or q4_1.")] = "f16",
) -> None:
    """Write a model as a GGUF file (int8/int4 models are dequantized first)."""
    from ember.llm.imports.gguf_export import export_gguf
    from ember.llm.imports.registry import resolve_model

    with console.status(f"exporting {name} to {gguf}"):
        try:
            path = export_gguf(resolve_model(name, _models_dir()), gguf, gguf_type)
        except (ValueError, FileNotFoundError) as error:
            raise _fail(error) from error
    console.print(f"wrote [bold]{path}[/bold] ({path.stat().st_size / 1e6:.0f} MB, {gguf_type})")


@app.command("list")
def list_(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List installed models; the one every command uses (llm_model) is marked default."""
    from ember.llm.imports.registry import list_models, resolve_model
    from ember.platform.settings import get_settings

    settings = get_settings()
    try:
        default = resolve_model(settings.llm_model, settings.models_dir).resolve()
    except FileNotFoundError:
        default = None
    rows = [
        {**row, "default": Path(row["path"]).resolve() == default} for row in list_models(settings.models_dir)
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    table = Table("name", "default", "quantization", "layers", "d_model", "size (MB)")
    for row in rows:
        cfg = row["config"]
        table.add_row(
            row["name"],
            "*" if row["default"] else "",
            row["quantization"],
            str(cfg["n_layers"]),
            str(cfg["d_model"]),
            f"{row['bytes'] / 1e6:.0f}",
        )
    console.print(table)
    if default is None:
        console.print(
            f"[yellow]the default model {settings.llm_model!r} (llm_model) is not installed:[/yellow] "
            f"`ember models pull {settings.llm_model}` or `ember config set llm_model NAME`"
        )


@app.command()
def show(name: Annotated[str, typer.Argument(help="An installed model name or checkpoint path.")]) -> None:
    """Print a model's config, quantization and location as JSON."""
    from ember.llm.imports.registry import model_info, resolve_model

    try:
        path = resolve_model(name, _models_dir())
    except FileNotFoundError as error:
        raise _fail(error) from error
    console.print_json(json.dumps(model_info(path)))
