"""`ember llm generate|chat` for quick checks of the local engine, and `ember llm tokenizer ...`."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from ember.commands import tokenizer

app = typer.Typer(no_args_is_help=True, help="Run Ember's own LLM engine.")
app.add_typer(tokenizer.app, name="tokenizer")
console = Console()

ModelOption = Annotated[
    str | None,
    typer.Option("--model", "-m", help="Installed model name or checkpoint path (default: llm_model)."),
]
MaxTokens = Annotated[int, typer.Option(help="Most tokens to generate.")]
Temperature = Annotated[float, typer.Option(help="0 for greedy decoding.")]
TopP = Annotated[float, typer.Option(help="Nucleus sampling mass.")]
Seed = Annotated[int | None, typer.Option(help="Seed for reproducible sampling.")]
Device = Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda if available).")]
Compile = Annotated[
    bool | None,
    typer.Option("--compile/--no-compile", help="torch.compile the decode step (default: on CUDA only)."),
]


def _engine(model: str | None, device: str | None, compile_decode: bool | None):
    from ember.llm.imports.registry import resolve_model
    from ember.llm.inference.engine import Engine
    from ember.platform.settings import get_settings

    settings = get_settings()
    model = model or settings.llm_model
    try:
        with console.status(f"loading {model}"):
            directory = resolve_model(model, settings.models_dir)
            return Engine.load(directory, device=device, compile_decode=compile_decode)
    except FileNotFoundError as error:
        console.print(f"[red]error:[/red] {error}")
        raise typer.Exit(1) from error


@app.command()
def generate(
    prompt: Annotated[str, typer.Argument(help="Text to continue.")],
    model: ModelOption = None,
    max_tokens: MaxTokens = 128,
    temperature: Temperature = 0.0,
    top_p: TopP = 1.0,
    seed: Seed = None,
    device: Device = None,
    compile_decode: Compile = None,
) -> None:
    """Continue PROMPT with plain completion (no chat template), streaming the text."""
    from ember.llm.inference.sampling import SamplingParams

    engine = _engine(model, device, compile_decode)
    params = SamplingParams(max_tokens=max_tokens, temperature=temperature, top_p=top_p, seed=seed)
    for chunk in engine.stream(prompt, params):
        typer.echo(chunk.text, nl=False)
    typer.echo()


@app.command()
def chat(
    model: ModelOption = None,
    system: Annotated[str | None, typer.Option(help="System prompt.")] = None,
    max_tokens: MaxTokens = 512,
    temperature: Temperature = 0.0,
    top_p: TopP = 1.0,
    seed: Seed = None,
    device: Device = None,
    compile_decode: Compile = None,
) -> None:
    """A plain REPL through the model's chat template. Empty line or Ctrl-D quits."""
    from ember.llm.inference.chat import ChatModel

    chat_model = ChatModel(_engine(model, device, compile_decode))
    messages = [{"role": "system", "content": system}] if system else []
    sampling = {"max_tokens": max_tokens, "temperature": temperature, "top_p": top_p, "seed": seed}
    while True:
        try:
            line = input("> ").strip()
        except EOFError:
            break
        if not line:
            break
        messages.append({"role": "user", "content": line})
        result = None
        for delta in chat_model.stream(messages, **sampling):
            typer.echo(delta.text, nl=False)
            result = delta.result or result
        typer.echo()
        for call in result.tool_calls:
            console.print(f"[cyan]tool call[/cyan] {call.name} {call.arguments}")
        messages.append({"role": "assistant", "content": result.text})
