"""`ember eval rescore RUN`: an answers run scored again from its stored responses, into a new run folder,
so a scorer fix applies to earlier runs without generating again. Only the text scores (match, exact,
numeric, F1) are recomputed; citation support and retrieval fields are kept as they were."""

from __future__ import annotations

from pathlib import Path

from ember.evals.answers_suite import text_scores
from ember.evals.runs import RunFolder, open_run
from ember.evals.suite_metrics import summarize

PROVENANCE = ("suite", "git_commit", "ember_version", "started_at")


def rescore_answers(run: RunFolder, runs_dir: Path) -> RunFolder:
    config = run.read_config()
    if config.get("suite") != "answers":
        raise ValueError(f"{run.path} is a {config.get('suite')} run; only answers runs can be rescored")
    kept = {k: v for k, v in config.items() if k not in PROVENANCE}
    rescored = open_run(runs_dir, "answers", {**kept, "rescored_from": str(run.path)})
    for item in run.read_items():
        rescored.append_item({**item, **text_scores(item["response"], item["gold"], item["answer_type"])})
    extra = {"support_scorer": config.get("support_scorer"), "rescored_from": str(run.path)}
    rescored.write_summary(summarize("answers", rescored.read_items(), extra))
    return rescored
