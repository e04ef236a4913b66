"""`ember eval rescore RUN`: an answers or agent run scored again from its stored responses, into a new run
folder next to it, so a scorer fix applies to earlier runs without generating again.

Answers: the text scores (match, exact, numeric, F1) and the loop flag are recomputed; citation
support, retrieval and judge fields are kept as they were. Agent: success within tolerance, and pass^k
from it; the tolerance is the item's own, or, for runs from before items stored it, the task file's
named in the run's config.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ember.evals.agent_suite import pass_hat, task_success
from ember.evals.answer_scoring import looped
from ember.evals.answers_suite import text_scores
from ember.evals.datasets import load_agent_tasks
from ember.evals.runs import RunFolder, open_run
from ember.evals.suite_metrics import summarize

PROVENANCE = ("suite", "git_commit", "ember_version", "started_at")
SUMMARY_OWN = ("suite", "items", "metrics")  # recomputed; the rest of the old summary is kept


def _answers_scores(run: RunFolder, items: list[dict]) -> Callable[[dict], dict]:
    max_tokens = run.read_config().get("max_tokens")

    def score(item: dict) -> dict:
        scores = text_scores(item["response"], item["gold"], item["answer_type"])
        if max_tokens and "completion_tokens" in item:
            hit_max = item["completion_tokens"] >= max_tokens
            scores["looped"] = looped(item["response"], item.get("flags", []), hit_max)
        return scores

    return score


def _agent_scores(run: RunFolder, items: list[dict]) -> Callable[[dict], dict]:
    tolerances: dict[str, float] = {}
    dataset = run.read_config().get("dataset")
    if any("tolerance" not in item for item in items):
        if not dataset:
            raise ValueError(f"{run.path}: its items have no tolerance and its config names no task file")
        tolerances = {task.id: task.tolerance for task in load_agent_tasks(Path(dataset))}

    def score(item: dict) -> dict:
        tolerance = item.get("tolerance", tolerances.get(str(item["task_id"])))
        if tolerance is None:
            raise ValueError(f"{run.path}: item '{item['id']}': task '{item['task_id']}' is not in {dataset}")
        return {"success": task_success(item["response"], item["gold"], tolerance)}

    return score


RESCORERS = {"answers": _answers_scores, "agent": _agent_scores}


def rescore_run(run: RunFolder, runs_dir: Path) -> RunFolder:
    config = run.read_config()
    suite = config.get("suite")
    if suite not in RESCORERS:
        raise ValueError(f"{run.path} is a {suite} run; only {' and '.join(RESCORERS)} runs can be rescored")
    items = run.read_items()
    score = RESCORERS[suite](run, items)  # a bad run fails here, before the new folder exists
    kept = {k: v for k, v in config.items() if k not in PROVENANCE}
    rescored = open_run(runs_dir, suite, {**kept, "rescored_from": str(run.path)})
    for item in items:
        rescored.append_item({**item, **score(item)})
    records = rescored.read_items()
    extra = {k: v for k, v in run.read_summary().items() if k not in SUMMARY_OWN}
    extra |= pass_hat(records) if suite == "agent" else {}
    rescored.write_summary(summarize(suite, records, {**extra, "rescored_from": str(run.path)}))
    return rescored
