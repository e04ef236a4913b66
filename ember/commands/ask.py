"""`ember ask "question" -c NAME [--agent] [--show-steps]`: a grounded answer with citations.

The answer prints once: on a terminal it streams and is then redrawn with its checked citations;
piped, only the final text is written.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer
from rich.live import Live
from rich.markup import escape
from rich.text import Text

from ember.commands.common import console, err_console, service, user_errors
from ember.platform.types import Answer, Step, describe_fallback


def _print_step(step: Step) -> None:
    arguments = json.dumps(step.arguments, ensure_ascii=False)
    console.print(f"[cyan]→ {step.tool}[/cyan]({escape(arguments)}) · {step.latency_ms:.0f} ms")
    if step.thought:
        console.print(f"  [dim]thought:[/dim] {escape(step.thought[:200])}")
    observation = " ".join(step.observation.split())
    console.print(f"  [dim]{escape(observation[:240])}{'…' if len(observation) > 240 else ''}[/dim]")


def _print_notes(answer: Answer) -> None:
    """Why an agent answer fell back to one search (or stopped early), then the answer's other flags."""
    note = describe_fallback(answer.path, answer.fallback_reason)
    if note:
        err_console.print(f"[yellow]{escape(note)}[/yellow]")
    for flag in answer.flags:
        if flag != "agent_fallback":
            err_console.print(f"[yellow]note:[/yellow] {escape(flag.replace('_', ' '))}")


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
    svc = service()
    model = Path(svc.settings.llm_model).name
    answer = None
    with user_errors():
        svc.collection_id(collection)  # a missing collection fails before the model loads
        loading = time.perf_counter()
        with err_console.status(f"loading {model}…") as status:
            svc.warm_up(lambda line: status.update(line))
        loaded_s, started = time.perf_counter() - loading, time.perf_counter()
        events = svc.ask_stream(
            question,
            collection,
            agent,
            conversation_id=conversation,
            show_steps=show_steps,
            max_tokens=max_tokens,
        )
        streamed = Text()
        with Live(streamed, console=console, auto_refresh=False, vertical_overflow="visible") as live:
            for event in events:
                if event.kind == "token" and not agent:
                    streamed.append(event.text)
                    live.refresh()
                elif event.kind == "step":
                    _print_step(event.step)
                elif event.kind == "done":
                    answer = event.answer
                    live.update(Text(answer.text), refresh=True)  # with its citations checked
        if not console.is_terminal:
            console.line()  # Live ends its last line only on a terminal
    if answer is None:
        raise typer.Exit(1)
    for citation in answer.citations:
        where = f" · {citation.location}" if citation.location else ""
        console.print(
            f"[bold][{citation.n}][/bold] {escape(citation.title)}{escape(where)} "
            f"(chunk {citation.chunk_id}): [dim]“{escape(citation.quote)}”[/dim]"
        )
    _print_notes(answer)
    seconds = time.perf_counter() - started
    tokens = answer.usage["completion_tokens"]
    err_console.print(
        f"[dim]{escape(model)} (loaded in {loaded_s:.1f} s) · conversation {answer.conversation_id} · "
        f"{answer.path} · {tokens} tokens · {seconds:.1f} s[/dim]",
        soft_wrap=True,
    )
