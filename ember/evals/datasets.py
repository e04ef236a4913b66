"""The JSONL inputs of the evals, checked line by line: a bad line names the file, the line and the field.

``jsonl_rows`` and ``Line`` are the one rule for every JSONL input (QA, agent tasks, multiple-choice
questions, judge labels); the QA and task formats are read here.

QA (``shared/evals/qa`` format): id, question, answer, answer_type (numeric | short | long), and optional
relevant_ids (corpus ids of the gold passages) and source. Agent tasks (``shared/evals/agent``): id, task,
answer (a number), and optional tolerance (relative), needs (tool names) and relevant_ids.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ember.evals.answer_scoring import DEFAULT_TOLERANCE
from ember.platform.errors import InvalidInputError

ANSWER_TYPES = ("numeric", "short", "long")


class DatasetError(InvalidInputError, ValueError):
    """A JSONL input that cannot be used; the message names the file, line and field."""


@dataclass(frozen=True)
class QAItem:
    id: str
    question: str
    answer: str | float
    answer_type: str
    relevant_ids: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class AgentTask:
    id: str
    task: str
    answer: float
    tolerance: float = DEFAULT_TOLERANCE
    needs: list[str] = field(default_factory=list)
    relevant_ids: list[str] = field(default_factory=list)


def jsonl_rows(path: Path) -> list[tuple[int, dict]]:
    """(line number, object) for every non-blank line of a JSONL input (QA, tasks, MCQ, judge labels);
    a line that is not a JSON object, or a file with none, is a DatasetError."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read it as UTF-8 text ({exc})") from exc
    rows = []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise DatasetError(f"{path}:{number}: not valid JSON ({exc.msg})") from exc
        if not isinstance(row, dict):
            raise DatasetError(f"{path}:{number}: expected a JSON object, got {type(row).__name__}")
        rows.append((number, row))
    if not rows:
        raise DatasetError(f"{path}: the file holds no items")
    return rows


class Line:
    """Field access for one row, raising DatasetError with the file, line and field."""

    def __init__(self, path: Path, number: int, row: dict) -> None:
        self.where, self.row = f"{path}:{number}", row

    def fail(self, name: str, problem: str) -> DatasetError:
        return DatasetError(f"{self.where}: field '{name}' {problem}")

    def get(self, name: str, kinds: tuple[type, ...], default: Any = ..., label: str = "") -> Any:
        if name not in self.row:
            if default is ...:
                raise self.fail(name, "is missing")
            return default
        value = self.row[name]
        if isinstance(value, bool) or not isinstance(value, kinds):
            raise self.fail(name, f"must be {label or kinds[0].__name__}, got {json.dumps(value)[:40]}")
        if isinstance(value, str) and not value.strip():
            raise self.fail(name, "is empty")
        return value

    def id(self) -> str:
        return str(self.get("id", (str, int), label="a string or integer"))

    def strings(self, name: str) -> list[str]:
        values = self.get(name, (list,), [], "a list of strings")
        if not all(isinstance(v, str) for v in values):
            raise self.fail(name, "must be a list of strings")
        return values


def unique_ids(path: Path, items: list) -> list:
    """``items`` (each with an ``id``), checked that no id appears twice."""
    seen: set[str] = set()
    for item in items:
        if item.id in seen:
            raise DatasetError(f"{path}: id '{item.id}' appears twice")
        seen.add(item.id)
    return items


def load_qa(path: Path, limit: int | None = None) -> list[QAItem]:
    items = []
    for number, row in jsonl_rows(path):
        line = Line(path, number, row)
        answer_type = line.get("answer_type", (str,))
        if answer_type not in ANSWER_TYPES:
            raise line.fail("answer_type", f"must be one of {', '.join(ANSWER_TYPES)}, got '{answer_type}'")
        items.append(
            QAItem(
                line.id(),
                line.get("question", (str,)),
                line.get("answer", (str, int, float), label="a string or number"),
                answer_type,
                line.strings("relevant_ids"),
            )
        )
    return unique_ids(path, items)[: limit or None]


def load_agent_tasks(path: Path, limit: int | None = None) -> list[AgentTask]:
    items = []
    for number, row in jsonl_rows(path):
        line = Line(path, number, row)
        tolerance = line.get("tolerance", (int, float), DEFAULT_TOLERANCE, "a number")
        if tolerance < 0:
            raise line.fail("tolerance", f"must be >= 0, got {tolerance}")
        items.append(
            AgentTask(
                line.id(),
                line.get("task", (str,)),
                float(line.get("answer", (int, float), label="a number")),
                float(tolerance),
                line.strings("needs"),
                line.strings("relevant_ids"),
            )
        )
    return unique_ids(path, items)[: limit or None]
