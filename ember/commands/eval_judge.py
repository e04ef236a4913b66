"""`ember eval judge grade|compare|calibrate`: an LLM judge, local or behind an OpenAI-compatible URL.

The judge options (``JudgeTarget``, ``JudgeModel``, ``JudgeApiKey``, ``JudgeMaxTokens``) are shared with
`ember eval answers --judge`; ``judge_spec`` turns them into the one ``JudgeSpec``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from ember.commands.common import console
from ember.commands.eval_llm import eval_input_errors

if TYPE_CHECKING:
    from ember.evals.judge.judge import Judge, JudgeSpec

app = typer.Typer(
    no_args_is_help=True, help="An LLM judge: grade answers, compare runs, calibrate the judge."
)

JudgeTarget = Annotated[
    str | None,
    typer.Option(
        "--judge",
        "--judge-base-url",
        help="The judge: 'local' (Ember's own LLM) or an OpenAI-compatible /v1 URL.",
    ),
]
JudgeModel = Annotated[str | None, typer.Option("--judge-model", help="The remote judge's model name.")]
JudgeApiKey = Annotated[
    str | None,
    typer.Option("--judge-api-key", help="The remote judge's key (default: $EMBER_JUDGE_API_KEY)."),
]
JudgeMaxTokens = Annotated[int, typer.Option("--judge-max-tokens", min=8, help="The judge's longest reply.")]
MaxTokens = Annotated[int, typer.Option("--max-tokens", "--judge-max-tokens", min=8, help="Longest reply.")]
Concurrency = Annotated[int, typer.Option("--concurrency", min=1, help="Verdicts in flight (threads).")]
Resume = Annotated[Path | None, typer.Option("--resume", help="A judge run folder to finish.")]


def judge_spec(target: str | None, model: str | None, api_key: str | None, max_tokens: int) -> JudgeSpec:
    from ember.evals.judge.judge import LOCAL, JudgeSpec

    return JudgeSpec(target or LOCAL, model, api_key, max_tokens)


def _judged(
    spec: JudgeSpec, description: str, steps: Callable[[], int], work: Callable[[Judge, Callable], dict]
) -> None:
    """Build the judge, run ``work(judge, advance)`` under a progress bar of ``steps()``, print it."""
    from ember.commands.common import service
    from ember.evals.progress import progress_bar

    with eval_input_errors():
        judge = spec.build(service)
        with progress_bar(description, steps()) as advance:
            summary = work(judge, advance)
    for key, value in summary.items():
        console.print(f"{key}: {value:.3f}" if isinstance(value, float) else f"{key}: {value}")


@app.command("grade")
def grade(
    answers_run: Path = typer.Argument(
        ..., help="An answers run folder (items with question, response, gold)."
    ),
    rubric: str = typer.Option("pass/fail", "--rubric", help="pass/fail | 1-5"),
    judge: JudgeTarget = None,
    judge_model: JudgeModel = None,
    judge_api_key: JudgeApiKey = None,
    concurrency: Concurrency = 1,
    max_tokens: MaxTokens = 96,
    resume: Resume = None,
) -> None:
    """Grade every answer of a run against its gold answer."""
    from ember.evals.judge.run_judging import answers_of, grade_run
    from ember.evals.runs import default_runs_dir

    _judged(
        judge_spec(judge, judge_model, judge_api_key, max_tokens),
        "judging",
        lambda: len(answers_of(answers_run)),
        lambda j, advance: grade_run(
            j, answers_run, default_runs_dir(), rubric, concurrency, resume, advance
        ),
    )


@app.command("compare")
def compare(
    run_a: Path = typer.Argument(..., help="Answers run A."),
    run_b: Path = typer.Argument(..., help="Answers run B (items matched by id)."),
    judge: JudgeTarget = None,
    judge_model: JudgeModel = None,
    judge_api_key: JudgeApiKey = None,
    concurrency: Concurrency = 1,
    max_tokens: MaxTokens = 96,
    resume: Resume = None,
) -> None:
    """Which run answered better, asked in both orders; a verdict that flips with the order is a tie."""
    from ember.evals.judge.run_judging import answers_of, compare_runs
    from ember.evals.runs import default_runs_dir

    _judged(
        judge_spec(judge, judge_model, judge_api_key, max_tokens),
        "comparing",
        lambda: len(set(answers_of(run_a)) & set(answers_of(run_b))),
        lambda j, advance: compare_runs(j, run_a, run_b, default_runs_dir(), concurrency, resume, advance),
    )


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
    judge: JudgeTarget = None,
    judge_model: JudgeModel = None,
    judge_api_key: JudgeApiKey = None,
    concurrency: Concurrency = 1,
    max_tokens: MaxTokens = 96,
    resume: Resume = None,
) -> None:
    """The judge against known labels: agreement, Cohen's kappa, swap consistency, share unparsed."""
    from ember.evals.judge import calibration
    from ember.evals.runs import default_runs_dir

    labelled = []
    with eval_input_errors():  # bad label sources are named before any model loads
        labelled += [item for run in runs for item in calibration.labels_from_answers_run(run)]
        labelled += calibration.labels_from_qa(qa, limit) if qa else []
        labelled += calibration.labels_from_file(labels) if labels else []
    _judged(
        judge_spec(judge, judge_model, judge_api_key, max_tokens),
        "calibrating",
        lambda: calibration.calibration_steps(labelled),
        lambda j, advance: calibration.calibrate(
            j, labelled, default_runs_dir(), concurrency, resume, advance
        ),
    )
