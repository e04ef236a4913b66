"""`ember eval agent`: each task answered by the agent through the service, ``samples`` times with
seeds seed, seed+1, ...; success within the task's tolerance, how the agent got there, and pass^k.

pass^k is τ-bench's: the chance that k samples of a task all succeed, estimated per task from n samples
with c successes as C(c, k) / C(n, k), averaged over tasks.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from math import comb
from typing import TYPE_CHECKING, Any

from ember.agents.types import Step
from ember.evals.answer_scoring import numeric_match
from ember.evals.datasets import AgentTask
from ember.evals.timed_ask import timed_ask

if TYPE_CHECKING:
    from ember.platform.service import EmberService

LOOP_GUARDS = ("max_steps", "repeated_call", "token_budget")
TRACE_CHARS = 300  # of each step's observation, in the run's items


@dataclass
class AgentContext:
    service: EmberService
    collection: str
    document_keys: dict[int, set[str]]
    sampling: dict[str, Any]  # max_tokens, temperature; the seed is set per sample


def sample_id(task_id: str, sample: int) -> str:
    return f"{task_id}#{sample}"


def task_success(response: str, gold: float, tolerance: float) -> bool:
    """The answer's quantity is the task's within its relative tolerance (what `ember eval rescore`
    recomputes)."""
    return numeric_match(response, gold, tolerance)


def trace_step(step: Step) -> dict[str, Any]:
    """What a reader of the run needs to see where a task went wrong: the call and what it returned."""
    return {"tool": step.tool, "arguments": step.arguments, "observation": step.observation[:TRACE_CHARS]}


def run_task(ctx: AgentContext, task: AgentTask, sample: int, seed: int) -> dict[str, Any]:
    timed = timed_ask(ctx.service, task.task, ctx.collection, True, **ctx.sampling, seed=seed + sample)
    answer = timed.answer
    tools = [step.tool for step in answer.steps]
    # A loop-guard stop means a call of the model's own ran, even when the planned fallback then took over.
    called_itself = answer.path == "agent" or answer.fallback_reason in LOOP_GUARDS
    malformed = (
        "malformed_tool_call_repaired" in answer.flags or answer.fallback_reason == "malformed_tool_call"
    )
    found = set().union(*(ctx.document_keys.get(d, set()) for d in answer.prompt_document_ids))
    return {
        "task_id": task.id,
        "sample": sample,
        "seed": seed + sample,
        "task": task.task,
        "gold": task.answer,
        "tolerance": task.tolerance,
        "response": answer.text,
        "success": task_success(answer.text, task.answer, task.tolerance),
        "tool_called": called_itself,
        "needed_tools_called": answer.path == "agent" and set(task.needs) <= set(tools),  # the model's own
        "tools": tools,
        "malformed_call": malformed,
        "repaired": malformed and answer.fallback_reason != "malformed_tool_call",
        "fallback": answer.path == "agent_fallback",
        "fallback_reason": answer.fallback_reason,
        "loop_guard_stop": answer.fallback_reason in LOOP_GUARDS,
        "steps": len(answer.steps),
        "trace": [trace_step(step) for step in answer.steps],
        "tokens": answer.usage.get("prompt_tokens", 0) + answer.usage.get("completion_tokens", 0),
        "completion_tokens": answer.usage.get("completion_tokens", 0),
        "gold_in_prompt": any(r in found for r in task.relevant_ids) if task.relevant_ids else None,
        "flags": answer.flags,
        "ttft_s": timed.first_token_s,
        "total_s": timed.total_s,
        "tokens_per_s": timed.tokens_per_s,
    }


def pass_hat_k(successes: dict[str, list[bool]], k: int) -> float:
    """Mean over tasks of C(c, k) / C(n, k); tasks with fewer than k samples are an error."""
    if not successes:
        return float("nan")
    total = 0.0
    for task_id, outcomes in successes.items():
        n, c = len(outcomes), sum(outcomes)
        if n < k:
            raise ValueError(f"task {task_id} has {n} samples, fewer than k={k}")
        total += comb(c, k) / comb(n, k)
    return total / len(successes)


def pass_hat(records: list[dict]) -> dict[str, float]:
    """pass^1 ... pass^n for the n samples every task has."""
    by_task: dict[str, list[bool]] = defaultdict(list)
    for record in records:
        by_task[record["task_id"]].append(bool(record["success"]))
    n = min((len(v) for v in by_task.values()), default=0)
    return {f"pass^{k}": pass_hat_k(by_task, k) for k in range(1, n + 1)}
