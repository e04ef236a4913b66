"""Ingestion throughput: load, chunk and store ~50 MB of real text on SQLite without embeddings; then
many small files ingested with index sync against the same files ingested without it plus a batched
`ember index rebuild` (the goal: a ratio of at most 1.5).

The corpus is built from text already on the machine: CPython's pydoc topics and the documentation
files (.md, .rst, .txt, .html) of installed packages and Debian's /usr/share/doc, repeated with
variation (each copy's paragraphs rotated and tagged) until the target size is reached.

    python bench/ingest/run.py [--megabytes 50] [--small-files 5000] [--workdir /tmp/ember-bench-ingest]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import sysconfig
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ember.platform.ingest.chunker import Chunker
from ember.platform.ingest.loaders import SUPPORTED_SUFFIXES, loader_for
from ember.platform.ingest.tokens import RegexTokenCounter
from ember.platform.samples import export_python_reference
from ember.platform.service import EmberService
from ember.platform.settings import Settings

DOC_SUFFIXES = {".md", ".rst", ".txt", ".html"}


def seed_files(workdir: Path) -> list[Path]:
    roots = [
        export_python_reference(workdir / "pydoc"),
        Path(sysconfig.get_paths()["purelib"]),
        Path("/usr/share/doc"),
    ]
    files = []
    for root in roots:
        for path in root.rglob("*"):
            if path.suffix in DOC_SUFFIXES and path.is_file() and 2_000 < path.stat().st_size < 2_000_000:
                files.append(path)
    return sorted(files)


def build_corpus(workdir: Path, megabytes: float) -> tuple[Path, int]:
    corpus = workdir / "corpus"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    target = int(megabytes * 2**20)
    written, copy = 0, 0
    seeds = seed_files(workdir)
    while written < target:
        for index, seed in enumerate(seeds):
            try:
                text = seed.read_text(encoding="utf-8")
            except UnicodeDecodeError:
                continue
            paragraphs = text.split("\n\n")
            shift = copy % max(len(paragraphs), 1)
            varied = f"Copy {copy} of {seed.name}\n\n" + "\n\n".join(paragraphs[shift:] + paragraphs[:shift])
            out = corpus / f"c{copy:02d}" / f"{index:05d}-{seed.name}"
            out.parent.mkdir(exist_ok=True)
            out.write_text(varied, encoding="utf-8")
            written += len(varied.encode())
            if written >= target:
                break
        copy += 1
    return corpus, written


def load_and_chunk_only(files: list[Path]) -> tuple[float, int]:
    chunker = Chunker(RegexTokenCounter(), 384, 64)
    started, chunks = time.perf_counter(), 0
    for path in files:
        loaded = loader_for(path)(path, path.read_bytes())
        chunks += len(chunker.chunk(loaded.blocks)[1])
    return time.perf_counter() - started, chunks


def build_small_files(workdir: Path, count: int) -> Path:
    """count small files (one to three short paragraphs of the Python reference each)."""
    from pydoc_data.topics import topics

    paragraphs = [
        p.strip() for text in topics.values() for p in text.split("\n\n") if 80 < len(p.strip()) < 600
    ]
    corpus = workdir / "small"
    shutil.rmtree(corpus, ignore_errors=True)
    corpus.mkdir(parents=True)
    for i in range(count):
        body = "\n\n".join(paragraphs[(i * 7 + j) % len(paragraphs)] for j in range(1 + i % 3))
        (corpus / f"note{i:05d}.md").write_text(f"# Note {i}\n\n{body}\n", encoding="utf-8")
    return corpus


def sync_against_rebuild(workdir: Path, corpus: Path, files: int) -> Table:
    """Ingest with index sync, against ingest without it plus a batched rebuild, each in a fresh home."""
    plain = EmberService(Settings(home=_fresh(workdir / "home-plain"), sync_indexes=False))
    unsynced = plain.ingest(str(corpus), "small")
    started = time.perf_counter()
    rebuilt = plain.rebuild_index("small")
    rebuild_seconds = time.perf_counter() - started
    synced_service = EmberService(Settings(home=_fresh(workdir / "home-sync")))
    synced = synced_service.ingest(str(corpus), "small")
    baseline = unsynced.seconds + rebuild_seconds
    table = Table(title=f"{files} small files, SQLite, with embeddings ({rebuilt.chunks} chunks)")
    for column in ("run", "seconds", "chunks/s"):
        table.add_column(column, justify="right")
    table.add_row("ingest without index sync", f"{unsynced.seconds:.1f}", "-")
    table.add_row(
        "batched rebuild (ember index rebuild)",
        f"{rebuild_seconds:.1f}",
        f"{rebuilt.chunks / rebuild_seconds:.0f}",
    )
    table.add_row("sum: the baseline", f"{baseline:.1f}", f"{rebuilt.chunks / baseline:.0f}")
    table.add_row(
        "ingest with index sync", f"{synced.seconds:.1f}", f"{synced.chunks_written / synced.seconds:.0f}"
    )
    table.add_row("ratio (goal: at most 1.5)", f"{synced.seconds / baseline:.2f}", "")
    return table


def _fresh(home: Path) -> Path:
    shutil.rmtree(home, ignore_errors=True)
    return home


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--megabytes", type=float, default=50)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ember-bench-ingest"))
    parser.add_argument("--small-files", type=int, default=5000, help="0 skips the index sync comparison")
    args = parser.parse_args()
    console = Console()
    if args.small_files:
        small = build_small_files(args.workdir, args.small_files)
        console.print(sync_against_rebuild(args.workdir, small, args.small_files))
    with console.status("building the corpus"):
        corpus, size = build_corpus(args.workdir, args.megabytes)
    files = sorted(p for p in corpus.rglob("*") if p.is_file() and p.suffix in SUPPORTED_SUFFIXES)
    megabytes = size / 2**20

    chunk_seconds, chunk_count = load_and_chunk_only(files)
    home = args.workdir / "home"
    shutil.rmtree(home, ignore_errors=True)
    service = EmberService(Settings(home=home, sync_indexes=False))
    first = service.ingest(str(corpus), "bench")
    second = service.ingest(str(corpus), "bench")

    table = Table(title=f"Ingest, {len(files)} files, {megabytes:.1f} MB, SQLite, no embeddings")
    for column in ("stage", "seconds", "MB/s", "chunks", "chunks/s"):
        table.add_column(column, justify="right")
    table.add_row(
        "load + chunk",
        f"{chunk_seconds:.1f}",
        f"{megabytes / chunk_seconds:.1f}",
        str(chunk_count),
        f"{chunk_count / chunk_seconds:.0f}",
    )
    table.add_row(
        "full ingest (load + chunk + store)",
        f"{first.seconds:.1f}",
        f"{megabytes / first.seconds:.1f}",
        str(first.chunks_written),
        f"{first.chunks_written / first.seconds:.0f}",
    )
    table.add_row(
        "unchanged re-run (hash check)",
        f"{second.seconds:.1f}",
        f"{megabytes / second.seconds:.1f}",
        "0",
        "-",
    )
    console.print(table)
    if first.failed:
        console.print(f"{len(first.failed)} files failed, e.g. {first.failed[0].reason}")
    sys.exit(0)


if __name__ == "__main__":
    main()
