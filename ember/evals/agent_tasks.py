"""Agent tasks (search, then compute): the dataset, one timed and scored run, the summary.

A task succeeds when the answer holds the gold number within the task's tolerance; a run also records
whether the model called tools itself or fell back to retrieve-then-answer, and which tools it used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ember.evals.answer_scoring import answer_match
from ember.evals.jsonl import read_jsonl
from ember.evals.summary_format import median, share
from ember.evals.timed_ask import timed_ask

if TYPE_CHECKING:
    from ember.platform.service import EmberService

DEFAULT_TOLERANCE = 0.01  # relative


@dataclass(frozen=True)
class AgentTask:
    id: str
    task: str
    answer: float | str
    tolerance: float = DEFAULT_TOLERANCE


@dataclass(frozen=True)
class AgentTaskResult:
    id: str
    total_s: float
    success: bool
    path: str  # "agent" (the model called tools) or "agent_fallback"
    tools: list[str]
    flags: list[str]
    answer: str


def load_agent_tasks(path: Path, limit: int | None = None) -> list[AgentTask]:
    """Rows with id, task, answer and an optional tolerance; the first ``limit`` of them when given."""
    rows = read_jsonl(path)[: limit or None]
    try:
        return [
            AgentTask(str(row["id"]), row["task"], row["answer"], row.get("tolerance", DEFAULT_TOLERANCE))
            for row in rows
        ]
    except KeyError as exc:
        raise ValueError(f"{path}: every task needs id, task and answer") from exc


def run_agent_task(
    service: EmberService, collection: str, item: AgentTask, max_tokens: int
) -> AgentTaskResult:
    timed = timed_ask(service, item.task, collection, True, max_tokens)
    answer = timed.answer
    return AgentTaskResult(
        id=item.id,
        total_s=timed.total_s,
        success=answer_match(answer.text, item.answer, "numeric", item.tolerance),
        path=answer.path,
        tools=[step.tool for step in answer.steps],
        flags=answer.flags,
        answer=answer.text,
    )


def summarize_agent_tasks(results: list[AgentTaskResult]) -> list[tuple[str, str]]:
    """(metric, value) rows: success, tool use, fallbacks, failures and latency."""
    n = len(results)
    return [
        ("agent task success", share(sum(r.success for r in results), n)),
        ("agent: model called a tool", share(sum(r.path == "agent" for r in results), n)),
        ("agent: fell back to retrieve → answer", share(sum(r.path == "agent_fallback" for r in results), n)),
        (
            "agent: used search then calculator",
            share(sum({"search", "calculator"} <= set(r.tools) for r in results), n),
        ),
        (
            "agent: loop guard / malformed-call failure",
            share(sum(any(f.startswith(("loop_guard", "failed")) for f in r.flags) for r in results), n),
        ),
        ("agent total latency, median (s)", f"{median([r.total_s for r in results]):.1f}"),
    ]
