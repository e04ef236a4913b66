"""`ember ask "question" -c NAME [--agent] [--show-steps]`: a grounded answer with citations."""

from __future__ import annotations

import json
import time

import typer
from rich.markup import escape

from ember.commands.common import console, err_console, service, user_errors
from ember.platform.types import Step


def _print_step(step: Step) -> None:
    arguments = json.dumps(step.arguments, ensure_ascii=False)
    console.print(f"[cyan]→ {step.tool}[/cyan]({escape(arguments)}) · {step.latency_ms:.0f} ms")
    if step.thought:
        console.print(f"  [dim]thought:[/dim] {escape(step.thought[:200])}")
    observation = " ".join(step.observation.split())
    console.print(f"  [dim]{escape(observation[:240])}{'…' if len(observation) > 240 else ''}[/dim]")


def ask(
    question: str = typer.Argument(..., help="The question."),
    collection: str = typer.Option(..., "--collection", "-c", help="Collection to answer from."),
    agent: bool = typer.Option(
        False, "--agent", help="Let the model plan with tools (search, read, calculator)."
    ),
    show_steps: bool = typer.Option(False, "--show-steps", help="Print each tool call as it happens."),
    conversation: int | None = typer.Option(None, "--conversation", help="Continue this conversation id."),
    max_tokens: int = typer.Option(200, "--max-tokens", min=1, help="Answer length limit in tokens."),
) -> None:
    """Answer from a collection's documents with numbered citations; the turn is stored as a conversation."""
    streamed, answer, started = [], None, time.perf_counter()
    with user_errors():
        events = service().ask_stream(
            question,
            collection,
            agent,
            conversation_id=conversation,
            show_steps=show_steps,
            max_tokens=max_tokens,
        )
        for event in events:
            if event.kind == "token" and not agent:
                streamed.append(event.text)
                console.print(escape(event.text), end="", soft_wrap=True)
            elif event.kind == "step":
                _print_step(event.step)
            elif event.kind == "done":
                answer = event.answer
    if answer is None:
        raise typer.Exit(1)
    if "".join(streamed).strip() != answer.text:  # the agent's answer, or one whose citations were repaired
        if streamed:
            console.print()
        console.print(escape(answer.text), end="", soft_wrap=True)
    console.print()
    for citation in answer.citations:
        where = f" · {citation.location}" if citation.location else ""
        console.print(
            f"[bold][{citation.n}][/bold] {escape(citation.title)}{escape(where)} "
            f"(chunk {citation.chunk_id}): [dim]“{escape(citation.quote)}”[/dim]"
        )
    for flag in answer.flags:
        err_console.print(f"[yellow]note:[/yellow] {flag.replace('_', ' ')}")
    seconds = round(time.perf_counter() - started, 1)
    tokens = answer.usage["completion_tokens"]
    err_console.print(
        f"[dim]conversation {answer.conversation_id} · {answer.path} · {tokens} tokens · {seconds} s[/dim]"
    )
