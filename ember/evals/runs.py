"""The run folder every eval writes: config.json, items.jsonl (one line per scored item), summary.json.

Items are appended one line at a time and fsynced, so an interrupted run keeps what it scored and
``--resume`` skips those ids. A half-written last line (a crash mid-write) is ignored on reading.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ember import __version__
from ember.retrieval.atomic import write_text_atomic

CONFIG, ITEMS, SUMMARY = "config.json", "items.jsonl", "summary.json"


@dataclass
class RunFolder:
    path: Path
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def append_item(self, item: dict) -> None:
        """One JSON line to items.jsonl, flushed and fsynced (safe from several threads)."""
        line = json.dumps(item, ensure_ascii=False, default=str) + "\n"
        with self._lock, open(self.path / ITEMS, "a", encoding="utf-8") as f:
            f.write(line)
            f.flush()
            os.fsync(f.fileno())

    def done_ids(self, key: str = "id") -> set[str]:
        return {str(item[key]) for item in self.read_items() if key in item}

    def write_summary(self, summary: dict) -> None:
        write_text_atomic(self.path / SUMMARY, json.dumps(summary, indent=2, default=str) + "\n")

    def read_config(self) -> dict:
        return json.loads((self.path / CONFIG).read_text(encoding="utf-8"))

    def read_items(self) -> list[dict]:
        items_path = self.path / ITEMS
        if not items_path.is_file():
            return []
        items = []
        for line in items_path.read_text(encoding="utf-8").splitlines():
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError:
                continue  # the torn last line of an interrupted run; that item is simply redone
        return items

    def read_summary(self) -> dict:
        summary_path = self.path / SUMMARY
        return json.loads(summary_path.read_text(encoding="utf-8")) if summary_path.is_file() else {}


def git_commit() -> str | None:
    """The checkout's commit (with ``+dirty`` when it has local changes), or None outside git."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=5, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+dirty" if dirty else "")


def open_run(runs_dir: Path, suite: str, config: dict, resume: Path | None = None) -> RunFolder:
    """A new ``runs_dir/<UTC time>-<suite>/`` with config.json written, or the ``resume`` folder reopened."""
    if resume is not None:
        resume = Path(resume)
        if not (resume / CONFIG).is_file():
            raise ValueError(f"{resume} is not a run folder (no {CONFIG})")
        return RunFolder(resume)
    now = datetime.now(UTC)
    runs_dir.mkdir(parents=True, exist_ok=True)
    stem = f"{now:%Y%m%dT%H%M%SZ}-{suite}"
    path, n = runs_dir / stem, 1
    while True:
        try:
            path.mkdir()
            break
        except FileExistsError:
            n += 1
            path = runs_dir / f"{stem}-{n}"
    full = {
        **config,
        "suite": suite,
        "git_commit": git_commit(),
        "ember_version": __version__,
        "started_at": now.isoformat(timespec="seconds"),
    }
    write_text_atomic(path / CONFIG, json.dumps(full, indent=2, default=str) + "\n")
    return RunFolder(path)


def check_resumed(run: RunFolder, config: dict, keys: tuple[str, ...]) -> None:
    """A resumed run continues with the settings it started with, else its items would mix two setups."""
    from ember.platform.errors import InvalidInputError

    stored = run.read_config()
    for key in keys:
        if stored.get(key) != config.get(key):
            raise InvalidInputError(
                f"{run.path}: that run scored {key} {stored.get(key)!r}, this one {config.get(key)!r}; "
                "resume it with the same settings or start a new run"
            )


def default_runs_dir() -> Path:
    from ember.platform.settings import get_settings

    return get_settings().home / "runs"
