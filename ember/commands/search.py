"""`ember search "query" -c NAME`: the retrieval pipeline from the command line (a single command).

Hits print as short blocks that wrap to any width (a terminal, a pipe, a pager), or as JSON with --json.
"""

from __future__ import annotations

import json
import textwrap
import time
from dataclasses import asdict

import typer
from rich.text import Text

from ember.commands.common import console, err_console, service, user_errors

STAGES = ("bm25", "dense", "fused", "rerank")
PREVIEW_CHARS = 240
INDENT = "    "


def _indented(text: str, style: str) -> None:
    """Wrapped to the console's width (80 when piped) under the hit's title, with no trailing padding."""
    lines = textwrap.wrap(text, max(console.width, 40), initial_indent=INDENT, subsequent_indent=INDENT)
    console.print(Text("\n".join(lines), style=style), soft_wrap=True)


def search(
    query: str = typer.Argument(..., help="What to look for."),
    collection: list[str] = typer.Option(..., "--collection", "-c", help="Collection(s) to search."),
    mode: str = typer.Option("hybrid+rerank", "--mode", "-m", help="bm25 | dense | hybrid | hybrid+rerank"),
    k: int = typer.Option(8, "-k", min=1, help="Number of hits."),
    explain: bool = typer.Option(False, "--explain", help="Show each stage's rank and score."),
    as_json: bool = typer.Option(False, "--json", help="Print the hits, stages and timings as JSON."),
) -> None:
    """Search with BM25, dense, hybrid (RRF) or hybrid + cross-encoder rerank; --explain shows every stage."""
    svc = service()
    with user_errors():
        for name in collection:
            svc.collection_id(name)  # a missing collection fails before any model loads
        started = time.perf_counter()
        with err_console.status("loading search models…"):
            svc.load_search_models()
        load_ms = (time.perf_counter() - started) * 1e3
        result = svc.search(query, collection, k, mode)
    if as_json:
        hits = [{"rank": rank, **asdict(hit)} for rank, hit in enumerate(result.hits, 1)]
        payload = {"query": query, "mode": mode, "timings_ms": result.timings_ms, "load_ms": load_ms}
        typer.echo(json.dumps({**payload, "notes": result.notes, "hits": hits}, ensure_ascii=False))
        return
    for note in result.notes:
        err_console.print(f"[yellow]note:[/yellow] {note}")
    search_ms, load_s = result.timings_ms["total"], load_ms / 1e3
    console.print(
        f"[bold]{mode}[/bold] · {search_ms:.0f} ms · models loaded in {load_s:.1f} s", highlight=False
    )
    for rank, hit in enumerate(result.hits, 1):
        where = " · ".join(part for part in (hit.title, hit.location) if part)
        console.print(Text.assemble(f"{rank:>2}. ", (where, "bold"), f"  {hit.score:.3f}"))
        text = " ".join(hit.text.split())
        preview = text[:PREVIEW_CHARS] + ("…" if len(text) > PREVIEW_CHARS else "")
        _indented(preview, "dim")
        if explain:
            stages = " · ".join(
                f"{s} {hit.stages[s].rank} ({hit.stages[s].score:.3g})" if s in hit.stages else f"{s} –"
                for s in STAGES
            )
            _indented(stages, "cyan")
    if not result.hits:
        err_console.print("no hits (is the collection indexed? `ember index check`)")
