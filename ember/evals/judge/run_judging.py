"""Judging answers runs: each answer graded against its gold answer, or two runs compared item by item.

An answers run's items carry ``question``, ``response`` (the answer) and ``gold``; items are matched
across runs by ``id``. Each judgement is appended to a new run folder (suite "judge-grade" or
"judge-pair") as it finishes, so an interrupted judging resumes where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ember.evals.item_runner import run_items
from ember.evals.judge.judge import Judge, PairVerdict, Verdict
from ember.evals.judge.prompts import PROMPT_VERSION
from ember.evals.judge.verdicts import PASS_FAIL, SCALE
from ember.evals.runs import RunFolder, open_run
from ember.platform.errors import InvalidInputError

QUESTION, ANSWER, REFERENCE = "question", "response", "gold"


def answers_of(path: Path) -> dict[str, dict]:
    """id → item of the answers run at ``path``, only the items with a question and an answer."""
    if not (Path(path) / "config.json").is_file():
        raise InvalidInputError(f"{path}: not a run folder (no config.json)")
    items = RunFolder(Path(path)).read_items()
    usable = {str(i["id"]): i for i in items if "id" in i and QUESTION in i and ANSWER in i}
    if not usable:
        raise InvalidInputError(f"{path}: no items with '{QUESTION}' and '{ANSWER}' (is it an answers run?)")
    return usable


def grade_fields(verdict: Verdict, rubric: str) -> dict:
    """The item fields of one grade: the value, whether it passes, whether it was unreadable (after the
    retry), and the raw replies."""
    passed = None if verdict.value is None else (verdict.value if rubric == PASS_FAIL else verdict.value >= 4)
    return {
        "judge_grade": verdict.value,
        "judge_pass": passed,
        "judge_unparsed": verdict.value is None,
        "judge_replies": list(verdict.replies),
    }


def pair_fields(verdict: PairVerdict) -> dict:
    return {
        "outcome": verdict.outcome,
        "consistent": verdict.consistent,
        "first": verdict.first.value,
        "second": verdict.second.value,
        "replies": [*verdict.first.replies, *verdict.second.replies],
    }


def grade_run(
    judge: Judge,
    answers_run: Path,
    runs_dir: Path,
    rubric: str = PASS_FAIL,
    concurrency: int = 1,
    resume: Path | None = None,
    on_done: Callable[[], None] | None = None,
) -> dict:
    """Grade every answer of ``answers_run`` against its gold answer; returns the summary."""
    answers = answers_of(answers_run)
    config = {
        "judge": judge.name,
        "prompt_version": PROMPT_VERSION,
        "rubric": rubric,
        "run": str(answers_run),
    }
    run = open_run(runs_dir, "judge-grade", config, resume)

    def grade(item: dict) -> dict:
        verdict = judge.grade(item[QUESTION], item[ANSWER], str(item.get(REFERENCE, "")), rubric)
        return grade_fields(verdict, rubric)

    records = run_items(list(answers.items()), grade, run, concurrency, on_done)
    graded = [r for r in records if r["judge_grade"] is not None]
    summary = {
        "suite": "judge-grade",
        "judge": judge.name,
        "rubric": rubric,
        "items": len(records),
        "unparsed_share": 1 - len(graded) / len(records),
        "judge_pass_rate": sum(r["judge_pass"] for r in graded) / len(graded) if graded else None,
        "run_dir": str(run.path),
    }
    if rubric == SCALE and graded:
        summary["judge_mean_grade"] = sum(r["judge_grade"] for r in graded) / len(graded)
    run.write_summary(summary)
    return summary


def summarize_pairs(records: list[dict]) -> dict:
    """Wins, ties (flips included), unparsed, swap consistency over parsed pairs, A's win rate."""
    outcomes = [r["outcome"] for r in records]
    parsed = [r for r in records if r["outcome"] != "unparsed"]
    count = {k: outcomes.count(k) for k in ("a", "b", "tie", "unparsed")}
    return {
        "pairs": len(records),
        "a_wins": count["a"],
        "b_wins": count["b"],
        "ties": count["tie"],
        "unparsed": count["unparsed"],
        "flips": sum(r["consistent"] is False for r in records),
        "swap_consistency": sum(bool(r["consistent"]) for r in parsed) / len(parsed) if parsed else None,
        "a_win_rate": (count["a"] + count["tie"] / 2) / len(parsed) if parsed else None,  # ties half
    }


def compare_runs(
    judge: Judge,
    run_a: Path,
    run_b: Path,
    runs_dir: Path,
    concurrency: int = 1,
    resume: Path | None = None,
    on_done: Callable[[], None] | None = None,
) -> dict:
    """Compare the answers of two runs on the items they share, in both orders; returns the summary."""
    a, b = answers_of(run_a), answers_of(run_b)
    shared = [key for key in a if key in b]
    if not shared:
        raise InvalidInputError(f"{run_a} and {run_b} share no item ids")
    config = {"judge": judge.name, "prompt_version": PROMPT_VERSION, "run_a": str(run_a), "run_b": str(run_b)}
    run = open_run(runs_dir, "judge-pair", config, resume)

    def compare(key: str) -> dict:
        item = a[key]
        reference = str(item[REFERENCE]) if item.get(REFERENCE) not in (None, "") else None
        return pair_fields(judge.compare(item[QUESTION], item[ANSWER], b[key][ANSWER], reference))

    records = run_items([(key, key) for key in shared], compare, run, concurrency, on_done)
    summary = {
        "suite": "judge-pair",
        "judge": judge.name,
        **summarize_pairs(records),
        "run_dir": str(run.path),
    }
    run.write_summary(summary)
    return summary
