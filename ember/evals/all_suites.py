"""`ember eval all CONFIG.toml`: the retrieval, answers, agent and llm suites from one file, one report.

[answers]                       # any section may be left out
qa = "qa/factoid.jsonl"         # paths are relative to the TOML file
collection = "dev"
corpus = "retrieval/corpus.jsonl"   # optional: ingested into the collection first
concurrency = 1
max_tokens = 96
limit = 20                      # optional: the first N items
judge = "local"                 # optional: an LLM judge grades each answer ("local" or a /v1 URL)
judge_model = "NAME"            # a remote judge's model (key: $EMBER_JUDGE_API_KEY)
judge_rubric = "1-5"            # or "pass/fail"; judge_max_tokens = 96; judge_concurrency = 4
[agent]
tasks = "agent/tasks.jsonl"
collection = "dev"
samples = 1                     # temperature, seed, max_tokens, limit as for `ember eval agent`
[retrieval]
datasets = ["retrieval/datapoint"]
corpus = "retrieval/corpus.jsonl"
modes = ["bm25", "dense", "hybrid"]
[llm]                           # passed to ember.evals.llm_suite.run_llm_suite
texts = ["docs"]
mcq = "builtin"                 # or a path
[report]
out = "eval-report"
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ember.evals.judge.judge import DEFAULT_MAX_TOKENS, JudgeSpec
from ember.evals.judge.verdicts import RUBRICS, SCALE
from ember.evals.report import build_report
from ember.evals.runs import RunFolder, open_run
from ember.evals.suites import run_agent, run_answers, run_retrieval

if TYPE_CHECKING:
    from ember.platform.service import EmberService

JUDGE_KEYS = ("judge", "judge_model", "judge_rubric", "judge_max_tokens", "judge_concurrency")
SECTIONS = {
    "answers": {"qa", "collection", "corpus", "concurrency", "max_tokens", "limit", *JUDGE_KEYS},
    "agent": {"tasks", "collection", "samples", "temperature", "seed", "concurrency", "max_tokens", "limit"},
    "retrieval": {"datasets", "corpus", "modes", "reranker"},
    "llm": {"texts", "collection", "mcq", "model", "quantize"},
    "report": {"out"},
}
REQUIRED = {"answers": {"qa", "collection"}, "agent": {"tasks", "collection"}, "retrieval": {"datasets"}}
PATHS = {"qa", "tasks", "corpus", "datasets", "texts", "mcq", "out"}


@dataclass
class AllResult:
    runs: dict[str, RunFolder] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    report: Path | None = None
    seconds: float = 0.0


def read_config(path: Path) -> dict[str, dict[str, Any]]:
    """The TOML file, checked: known sections and keys, required keys, paths resolved beside the file."""
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from exc
    config = {}
    for section, table in raw.items():
        if section not in SECTIONS or not isinstance(table, dict):
            raise ValueError(f"{path}: unknown section [{section}]; known: {', '.join(SECTIONS)}")
        unknown = set(table) - SECTIONS[section]
        missing = REQUIRED.get(section, set()) - set(table)
        if unknown or missing:
            problem = f"unknown key {sorted(unknown)}" if unknown else f"missing key {sorted(missing)}"
            raise ValueError(f"{path}: [{section}] {problem}")
        if section == "answers":
            _check_judge(path, table)
        config[section] = {k: _resolve(path, k, v) for k, v in table.items()}
    if not set(config) - {"report"}:
        raise ValueError(f"{path}: no suite to run; add [answers], [agent], [retrieval] or [llm]")
    return config


def _check_judge(path: Path, answers: dict[str, Any]) -> None:
    """Judge options are checked before any suite runs (a typo must not surface after an hour)."""
    options = set(answers) & set(JUDGE_KEYS)
    if options and "judge" not in options:
        raise ValueError(f'{path}: [answers] {sorted(options)} need judge = "local" or a /v1 URL')
    if "judge_rubric" in answers and answers["judge_rubric"] not in RUBRICS:
        raise ValueError(f"{path}: [answers] judge_rubric must be one of {', '.join(RUBRICS)}")


def _resolve(path: Path, key: str, value: Any) -> Any:
    if key not in PATHS or value == "builtin":
        return value
    base = Path(path).resolve().parent
    return [base / v for v in value] if isinstance(value, list) else base / value


def run_all(path: Path, make_service: Callable[[], EmberService], runs_dir: Path) -> AllResult:
    config = read_config(path)
    result, start = AllResult(), time.perf_counter()
    service = make_service() if set(config) & {"answers", "agent", "llm"} else None
    for dataset in config.get("retrieval", {}).get("datasets", []):
        r = config["retrieval"]
        result.runs[f"retrieval {dataset.name}"] = run_retrieval(
            dataset,
            runs_dir,
            r.get("corpus"),
            tuple(r.get("modes", ("bm25", "dense", "hybrid"))),
            r.get("reranker"),
        )
    if "answers" in config:
        a = dict(config["answers"])
        judging = {key: a.pop(key) for key in JUDGE_KEYS if key in a}
        if "judge" in judging:
            a["judge"] = JudgeSpec(
                judging["judge"],
                judging.get("judge_model"),
                max_tokens=judging.get("judge_max_tokens", DEFAULT_MAX_TOKENS),
            )
            a["judge_rubric"] = judging.get("judge_rubric", SCALE)
            a["judge_concurrency"] = judging.get("judge_concurrency")
        result.runs["answers"] = run_answers(service, a.pop("qa"), a.pop("collection"), runs_dir, **a)
    if "agent" in config:
        a = dict(config["agent"])
        result.runs["agent"] = run_agent(service, a.pop("tasks"), a.pop("collection"), runs_dir, **a)
    if "llm" in config:
        llm_run = _run_llm(service, config["llm"], runs_dir)
        if llm_run is not None:
            result.runs["llm"] = llm_run
    out = (
        config.get("report", {}).get("out")
        or runs_dir / "reports" / Path(next(iter(result.runs.values())).path).name
    )
    result.report, _ = build_report(list(result.runs.values()), Path(out))
    result.seconds = time.perf_counter() - start
    return result


def _run_llm(service: EmberService, options: dict[str, Any], runs_dir: Path) -> RunFolder:
    from ember.evals.llm_suite import BUILTIN_MCQ, run_llm_suite

    options = dict(options)
    if options.get("mcq") == "builtin":
        options["mcq"] = BUILTIN_MCQ
    if "texts" in options:
        options["texts"] = [str(t) for t in options["texts"]]
    summary = run_llm_suite(service, runs_dir=runs_dir, **options)
    return open_run(runs_dir, "llm", {}, resume=Path(summary["run_dir"]))
