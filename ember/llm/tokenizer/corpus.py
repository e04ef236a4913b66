"""Stream training text from folders, JSONL files and plain text files, up to a byte budget."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path

from tqdm import tqdm

SNIFF_BYTES = 8192  # a NUL byte in a file's head marks it as binary


def _files(path: Path) -> Iterator[Path]:
    if path.is_dir():
        yield from sorted(p for p in path.rglob("*") if p.is_file())
    elif path.is_file():
        yield path
    else:
        raise FileNotFoundError(f"training input not found: {path}")


def _is_binary(path: Path) -> bool:
    with path.open("rb") as handle:
        return b"\0" in handle.read(SNIFF_BYTES)


def _texts_of(path: Path, text_field: str) -> Iterator[str]:
    if path.suffix == ".jsonl":
        with path.open(encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    record = json.loads(line)
                    text = record[text_field]
                except (json.JSONDecodeError, KeyError, TypeError) as error:
                    raise ValueError(
                        f"{path}:{number}: expected a JSON object with a {text_field!r} string"
                    ) from error
                if not isinstance(text, str):
                    raise ValueError(f"{path}:{number}: field {text_field!r} is not a string")
                yield text
    elif not _is_binary(path):
        yield path.read_text(encoding="utf-8", errors="replace")


def iter_texts(
    paths: Iterable[str | Path],
    byte_budget: int | None = None,
    text_field: str = "text",
    progress: bool = False,
) -> Iterator[str]:
    """Texts of every file under ``paths``: each JSONL record's ``text_field``, other files whole
    (binaries skipped). Stops once ``byte_budget`` UTF-8 bytes are out (the last text is cut to fit)."""
    used = 0
    with tqdm(total=byte_budget, unit="B", unit_scale=True, desc="reading", disable=not progress) as bar:
        for path in paths:
            for file in _files(Path(path)):
                for text in _texts_of(file, text_field):
                    size = len(text.encode("utf-8"))
                    if byte_budget is not None and used + size > byte_budget:
                        cut = text.encode("utf-8")[: byte_budget - used].decode("utf-8", errors="ignore")
                        bar.update(byte_budget - used)
                        if cut:
                            yield cut
                        return
                    used += size
                    bar.update(size)
                    yield text
