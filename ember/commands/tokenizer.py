"""`ember llm tokenizer train|encode|inspect`: train Ember's byte-level BPE and look inside tokenizers."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

app = typer.Typer(no_args_is_help=True, help="Train, run and inspect byte-level BPE tokenizers.")
console = Console()

TOKENIZER_HELP = "Ember tokenizer JSON, HF tokenizer.json, a .gguf file, or an installed model name."


def _open(spec: str | None):
    """The tokenizer in file ``spec``, else that of the model ``spec`` (default: the configured model)."""
    from ember.llm.tokenizer.files import load_tokenizer_file

    try:
        if spec and Path(spec).expanduser().is_file():
            return load_tokenizer_file(Path(spec).expanduser())
        from ember.llm.imports.registry import resolve_model
        from ember.llm.inference.checkpoint import load_tokenizer
        from ember.platform.settings import get_settings

        settings = get_settings()
        return load_tokenizer(resolve_model(spec or settings.llm_model, settings.models_dir))
    except (OSError, ValueError) as error:
        raise typer.BadParameter(str(error), param_hint="TOKENIZER") from error


@app.command()
def train(
    inputs: Annotated[list[Path], typer.Argument(help="Folders, .jsonl files or text files to learn from.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the tokenizer JSON.")],
    vocab_size: Annotated[
        int, typer.Option(help="Total vocabulary: 256 bytes + merges + special tokens.")
    ] = 32768,
    max_bytes: Annotated[int | None, typer.Option(help="Stop reading after this many bytes of text.")] = None,
    pattern: Annotated[str | None, typer.Option(help="Pre-tokenization regex (default: GPT-4's).")] = None,
    special: Annotated[
        list[str] | None, typer.Option(help="Special tokens (repeat); default: Ember's set.")
    ] = None,
    text_field: Annotated[str, typer.Option(help="Field holding the text in JSONL records.")] = "text",
    workers: Annotated[int, typer.Option(help="Processes that split and count pre-tokens.")] = 1,
) -> None:
    """Train a tokenizer on a corpus."""
    from ember.llm.tokenizer import GPT4_PATTERN, Tokenizer
    from ember.llm.tokenizer.corpus import iter_texts

    for path in inputs:
        if not path.exists():
            raise typer.BadParameter(f"{path} does not exist", param_hint="INPUTS")
    start = time.perf_counter()
    try:
        tok = Tokenizer.train(
            iter_texts(inputs, max_bytes, text_field=text_field, progress=True),
            vocab_size,
            pattern=pattern or GPT4_PATTERN,
            special_tokens=special or None,
            workers=workers,
            progress=True,
        )
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    tok.save(out)
    console.print(f"wrote {out}: {tok.vocab_size} tokens in {time.perf_counter() - start:.1f} s")


@app.command()
def encode(
    tokenizer: Annotated[str, typer.Argument(help=TOKENIZER_HELP)],
    text: Annotated[str | None, typer.Argument(help="Text to encode (or use --file).")] = None,
    file: Annotated[
        Path | None, typer.Option("--file", "-f", help="Encode this file's text instead.")
    ] = None,
    allow_special: Annotated[
        bool, typer.Option(help="Let special-token text become special tokens.")
    ] = False,
    show: Annotated[bool, typer.Option(help="Show each token's text next to its id.")] = False,
) -> None:
    """Print the token ids of a text as JSON."""
    if (text is None) == (file is None):
        raise typer.BadParameter("give either TEXT or --file")
    content = file.read_text(encoding="utf-8") if file is not None else text
    tok = _open(tokenizer)
    ids = tok.encode(content, allowed_special="all" if allow_special else ())
    if show:
        for token_id in ids:
            console.print(f"{token_id:>7}  {tok.token_bytes(token_id)!r}", markup=False, highlight=False)
    else:
        typer.echo(json.dumps(ids))


@app.command()
def inspect(
    tokenizer: Annotated[str | None, typer.Argument(help=TOKENIZER_HELP + " Default: llm_model.")] = None,
    longest: Annotated[int, typer.Option(help="How many of the longest tokens to list.")] = 10,
) -> None:
    """Summarise a tokenizer: sizes, pattern, special tokens, chat template, longest tokens."""
    tok = _open(tokenizer)
    table = Table(title=tokenizer or "the configured model's tokenizer", show_header=False)
    table.add_row("vocab size", str(tok.vocab_size))
    table.add_row("merges", str(len(tok.merge_order)))
    table.add_row("pattern", escape(tok.pattern))
    table.add_row("special tokens", escape(", ".join(f"{t}={i}" for t, i in tok.special_tokens.items())))
    table.add_row("bos / eos / pad", f"{tok.bos_id} / {tok.eos_id} / {tok.pad_id}")
    table.add_row("end-of-turn ids", str(sorted(tok.eos_ids)))
    table.add_row("chat template", "model's own (jinja)" if tok.chat_template else "Ember's")
    by_length = sorted(tok.vocab.items(), key=lambda item: (-len(item[1]), item[0]))[:longest]
    table.add_row("longest tokens", escape("\n".join(f"{i}: {token!r}" for i, token in by_length)))
    console.print(table)
