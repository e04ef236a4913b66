"""`ember eval judge grade|compare|calibrate`: an LLM judge, local or behind an OpenAI-compatible URL."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from ember.commands.common import console
from ember.commands.eval_llm import eval_input_errors

app = typer.Typer(
    no_args_is_help=True, help="An LLM judge: grade answers, compare runs, calibrate the judge."
)

BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--judge-base-url", help="OpenAI-compatible /v1 URL of the judge (default: Ember's own LLM)."
    ),
]
JudgeModel = Annotated[str | None, typer.Option("--judge-model", help="The remote judge's model name.")]
ApiKey = Annotated[
    str | None,
    typer.Option("--judge-api-key", help="The remote judge's key (default: $EMBER_JUDGE_API_KEY)."),
]
Concurrency = Annotated[int, typer.Option("--concurrency", min=1, help="Verdicts in flight (threads).")]
MaxTokens = Annotated[int, typer.Option("--max-tokens", min=8, help="Longest judge reply.")]
Resume = Annotated[Path | None, typer.Option("--resume", help="A judge run folder to finish.")]


def _judge(base_url: str | None, model: str | None, api_key: str | None, max_tokens: int):  # noqa: ANN202
    from ember.commands.common import service
    from ember.evals.judge.judge import Judge, judge_backend

    return Judge(judge_backend(None if base_url else service(), base_url, model, api_key), max_tokens)


def _print(summary: dict) -> None:
    for key, value in summary.items():
        console.print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")


@app.command("grade")
def grade(
    answers_run: Path = typer.Argument(
        ..., help="An answers run folder (items with question, response, gold)."
    ),
    rubric: str = typer.Option("pass/fail", "--rubric", help="pass/fail | 1-5"),
    judge_base_url: BaseUrl = None,
    judge_model: JudgeModel = None,
    judge_api_key: ApiKey = None,
    concurrency: Concurrency = 1,
    max_tokens: MaxTokens = 96,
    resume: Resume = None,
) -> None:
    """Grade every answer of a run against its gold answer."""
    from ember.evals.judge.run_judging import answers_of, grade_run
    from ember.evals.progress import progress_bar
    from ember.evals.runs import default_runs_dir

    with eval_input_errors():
        judge = _judge(judge_base_url, judge_model, judge_api_key, max_tokens)
        with progress_bar("judging", len(answers_of(answers_run))) as advance:
            summary = grade_run(judge, answers_run, default_runs_dir(), rubric, concurrency, resume, advance)
    _print(summary)


@app.command("compare")
def compare(
    run_a: Path = typer.Argument(..., help="Answers run A."),
    run_b: Path = typer.Argument(..., help="Answers run B (items matched by id)."),
    judge_base_url: BaseUrl = None,
    judge_model: JudgeModel = None,
    judge_api_key: ApiKey = None,
    concurrency: Concurrency = 1,
    max_tokens: MaxTokens = 96,
    resume: Resume = None,
) -> None:
    """Which run answered better, asked in both orders; a verdict that flips with the order is a tie."""
    from ember.evals.judge.run_judging import answers_of, compare_runs
    from ember.evals.progress import progress_bar
    from ember.evals.runs import default_runs_dir

    with eval_input_errors():
        judge = _judge(judge_base_url, judge_model, judge_api_key, max_tokens)
        shared = len(set(answers_of(run_a)) & set(answers_of(run_b)))
        with progress_bar("comparing", shared) as advance:
            summary = compare_runs(judge, run_a, run_b, default_runs_dir(), concurrency, resume, advance)
    _print(summary)


@app.command("calibrate")
def calibrate(
    runs: list[Path] = typer.Option(
        [], "--run", help="Answers runs: numeric answers labelled by the matcher."
    ),
    qa: Path | None = typer.Option(
        None, "--qa", help="QA JSONL: gold answers and copies with a changed number."
    ),
    labels: Path | None = typer.Option(
        None, "--labels", help="Human labels JSONL: id, question, reference, answer, label."
    ),
    limit: int | None = typer.Option(None, "--limit", min=1, help="Only the first N questions of --qa."),
    judge_base_url: BaseUrl = None,
    judge_model: JudgeModel = None,
    judge_api_key: ApiKey = None,
    concurrency: Concurrency = 1,
    max_tokens: MaxTokens = 96,
    resume: Resume = None,
) -> None:
    """The judge against known labels: agreement, Cohen's kappa, swap consistency, share unparsed."""
    from ember.evals.judge import calibration
    from ember.evals.progress import progress_bar
    from ember.evals.runs import default_runs_dir

    with eval_input_errors():
        labelled = [item for run in runs for item in calibration.labels_from_answers_run(run)]
        labelled += calibration.labels_from_qa(qa, limit) if qa else []
        labelled += calibration.labels_from_file(labels) if labels else []
        judge = _judge(judge_base_url, judge_model, judge_api_key, max_tokens)
        with progress_bar("calibrating", calibration.calibration_steps(labelled)) as advance:
            summary = calibration.calibrate(judge, labelled, default_runs_dir(), concurrency, resume, advance)
    _print(summary)
