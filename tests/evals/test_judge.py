"""The judge's verdict parser, swap logic, retry, kappa and calibration, with a scripted judge (the one
place the issue allows a scripted model: these test the parsing and the order logic, not a model)."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path

import pytest
from sklearn.metrics import cohen_kappa_score

from ember.evals.judge.calibration import calibrate, labels_from_file, labels_from_qa
from ember.evals.judge.judge import Judge
from ember.evals.judge.run_judging import compare_runs, grade_run
from ember.evals.judge.verdicts import PASS_FAIL, SCALE, parse_grade, parse_preference
from ember.evals.kappa import cohen_kappa
from ember.evals.runs import open_run
from ember.llm.inference.chat import ChatResult
from ember.platform.errors import InvalidInputError


class ScriptedJudge:
    """A chat backend whose reply is a function of the prompt."""

    name, context_window = "scripted", 4096

    def __init__(self, reply: Callable[[list[dict]], str]) -> None:
        self.reply, self.calls = reply, 0

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        self.calls += 1
        return ChatResult(self.reply(messages))


def _shown(messages: list[dict], label: str) -> str:
    """The text the prompt shows after ``label`` (e.g. "Answer A: ") up to the end of that line."""
    content = messages[0]["content"]
    return content.split(label, 1)[1].split("\n", 1)[0]


@pytest.mark.parametrize(
    ("reply", "rubric", "value"),
    [
        ("Same number as the reference. [[5]]", SCALE, 5),
        ("Rating: 4", SCALE, 4),
        ("Score: 3/5", SCALE, 3),
        ("2", SCALE, 2),
        ("[[6]]", SCALE, None),
        ("[[4]] or maybe [[2]]", SCALE, None),
        ("It is close.", SCALE, None),
        ("The number differs. [[FAIL]]", PASS_FAIL, False),
        ("Verdict: pass", PASS_FAIL, True),
        ("[[PASS]] ... on reflection [[FAIL]]", PASS_FAIL, None),
        ("[[PASS]] [[PASS]]", PASS_FAIL, True),
        ("", PASS_FAIL, None),
        ("PASS. The numbers agree.", PASS_FAIL, True),
        ("PASS or FAIL.", PASS_FAIL, None),
        ("2.5 is between", SCALE, None),
    ],
)
def test_grades_are_read_and_contradictions_are_unparsed(reply: str, rubric: str, value) -> None:  # noqa: ANN001
    assert parse_grade(reply, rubric) == value


@pytest.mark.parametrize(
    ("reply", "value"),
    [
        ("A is right. [[A]]", "A"),
        ("[[B]]", "B"),
        ("Both say the same. [[C]]", "tie"),
        ("Verdict: B", "B"),
        ("[[A]] no, [[B]]", None),
        ("Both answers are good.", None),
        ("[[D]]", None),
        ("A: 25,813 (game score)", "A"),
        ("A good answer is the second.", None),
    ],
)
def test_preferences_are_read(reply: str, value: str | None) -> None:
    assert parse_preference(reply) == value


def test_a_verdict_that_flips_with_the_order_is_a_tie() -> None:
    always_first = Judge(ScriptedJudge(lambda _m: "The first one. [[A]]"))
    verdict = always_first.compare("q?", "right", "wrong")
    assert (verdict.first.value, verdict.second.value) == ("A", "A")
    assert verdict.consistent is False and verdict.outcome == "tie"

    def prefers_right(messages: list[dict]) -> str:
        return "[[A]]" if _shown(messages, "Answer A: ") == "right" else "[[B]]"

    verdict = Judge(ScriptedJudge(prefers_right)).compare("q?", "right", "wrong")
    assert verdict.consistent is True and verdict.outcome == "a"
    verdict = Judge(ScriptedJudge(prefers_right)).compare("q?", "wrong", "right")
    assert verdict.outcome == "b"


def test_a_malformed_verdict_is_retried_once_then_unparsed_never_a_win() -> None:
    replies = iter(["I like the first answer", "[[B]]", "hmm", "still thinking"])
    backend = ScriptedJudge(lambda _m: next(replies))
    verdict = Judge(backend).compare("q?", "one", "two")
    assert verdict.first.value == "B" and verdict.first.replies == ("I like the first answer", "[[B]]")
    assert verdict.second.value is None and len(verdict.second.replies) == 2
    assert backend.calls == 4 and verdict.outcome == "unparsed" and verdict.consistent is None
    grade = Judge(ScriptedJudge(lambda _m: "no idea")).grade("q?", "a", "b", PASS_FAIL)
    assert grade.value is None and not grade.parsed and grade.replies == ("no idea", "no idea")


def test_the_retry_shows_the_judge_its_reply_and_asks_for_the_tag_alone() -> None:
    seen: list[list[dict]] = []

    def reply(messages: list[dict]) -> str:
        seen.append(messages)
        return "looks fine" if len(seen) == 1 else "[[PASS]]"

    assert Judge(ScriptedJudge(reply)).grade("q?", "4", "4", PASS_FAIL).value is True
    assert seen[1][-2] == {"role": "assistant", "content": "looks fine"}
    assert "PASS" in seen[1][-1]["content"]


def test_kappa_equals_scikit_learns() -> None:
    rng = random.Random(3)
    cases = [
        ([True, True, False, False], [True, False, False, False]),
        ([1, 2, 3, 1, 2, 3], [1, 2, 3, 3, 2, 1]),
        ([True, False, True], [True, False, True]),
        ([False, True, False, True], [True, False, True, False]),
    ]
    cases += [
        ([rng.randint(1, 5) for _ in range(40)], [rng.randint(1, 5) for _ in range(40)]) for _ in range(5)
    ]
    for a, b in cases:
        assert cohen_kappa(a, b) == pytest.approx(cohen_kappa_score(a, b))
    assert cohen_kappa([True, True], [True, True]) == 0.0  # one label only: chance explains everything
    with pytest.raises(ValueError, match="equally long"):
        cohen_kappa([1], [1, 2])


QA = [
    {"id": "q1", "question": "How long is the bridge?", "answer": "412 meters", "answer_type": "numeric"},
    {"id": "q2", "question": "How many astronomers?", "answer": "27 astronomers", "answer_type": "numeric"},
    {"id": "q3", "question": "Who opened it?", "answer": "Ilse Marten", "answer_type": "short"},
    {"id": "q4", "question": "What share?", "answer": "17.7%", "answer_type": "numeric"},
]


def _numeric_judge(messages: list[dict]) -> str:
    """Passes an answer when its number is the reference's; prefers the answer with that number."""
    from ember.evals.answer_scoring import numeric_match

    content = messages[0]["content"]
    reference = _shown(messages, "Reference answer: ")
    if "Answer A: " in content:
        return "[[A]]" if numeric_match(_shown(messages, "Answer A: "), reference) else "[[B]]"
    return "[[PASS]]" if numeric_match(_shown(messages, "Answer: "), reference) else "[[FAIL]]"


def test_calibration_of_a_right_judge_and_of_a_position_biased_one(tmp_path: Path) -> None:
    qa = tmp_path / "qa.jsonl"
    qa.write_text("".join(json.dumps(row) + "\n" for row in QA), encoding="utf-8")
    labelled = labels_from_qa(qa)
    assert [(i.id, i.answer, i.label) for i in labelled] == [
        ("q1:gold", "412 meters", True),
        ("q1:changed", "1,243 meters", False),
        ("q2:gold", "27 astronomers", True),
        ("q2:changed", "88 astronomers", False),
        ("q4:gold", "17.7%", True),
        ("q4:changed", "60.1%", False),
    ]
    right = calibrate(Judge(ScriptedJudge(_numeric_judge)), labelled, tmp_path / "runs")
    assert right["items"] == 6 and right["pairs"] == 3
    assert (right["agreement"], right["kappa"], right["unparsed_share"]) == (1.0, 1.0, 0.0)
    assert (right["swap_consistency"], right["right_answer_wins"]) == (1.0, 1.0)

    biased = calibrate(Judge(ScriptedJudge(lambda _m: "[[PASS]] [[A]]")), labelled, tmp_path / "runs")
    # "[[PASS]] [[A]]" holds two tags: no grade and no preference can be read from it.
    assert biased["unparsed_share"] == 1.0 and biased["agreement"] is None
    first = calibrate(
        Judge(ScriptedJudge(lambda m: "[[A]]" if "Answer A" in m[0]["content"] else "[[PASS]]")),
        labelled,
        tmp_path / "runs",
    )
    assert (first["agreement"], first["kappa"], first["judge_pass_rate"]) == (0.5, 0.0, 1.0)
    assert (first["swap_consistency"], first["right_answer_wins"]) == (0.0, 0.0)  # every pair flips: ties


def _answers_run(runs: Path, answers: dict[str, str]) -> Path:
    run = open_run(runs, "answers", {"model": "test"})
    for row in QA:
        if row["id"] in answers:
            item = {"id": row["id"], "question": row["question"], "gold": row["answer"]}
            run.append_item({**item, "answer_type": row["answer_type"], "response": answers[row["id"]]})
    return run.path


def test_two_runs_are_compared_item_by_item_and_answers_graded(tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    good = _answers_run(runs, {"q1": "It is 412 meters long [1].", "q2": "27.", "q4": "about 17.7%"})
    bad = _answers_run(runs, {"q1": "It is 500 meters long.", "q2": "27 of them.", "q3": "Marten"})
    judge = Judge(ScriptedJudge(_numeric_judge))
    summary = compare_runs(judge, good, bad, runs, concurrency=2)
    # q1: good wins both orders; q2: both right, so each order prefers A: a flip, a tie. q3, q4: unshared.
    assert (summary["pairs"], summary["a_wins"], summary["b_wins"], summary["ties"]) == (2, 1, 0, 1)
    assert summary["swap_consistency"] == 0.5 and summary["a_win_rate"] == 0.75 and summary["flips"] == 1
    graded = grade_run(judge, good, runs)
    assert graded["items"] == 3 and graded["judge_pass_rate"] == 1.0 and graded["unparsed_share"] == 0.0
    with pytest.raises(InvalidInputError, match="not a run folder"):
        compare_runs(judge, tmp_path, bad, runs)


def test_human_labels_are_checked_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    good = {"id": "h1", "question": "q?", "reference": "4", "answer": "four", "label": "pass"}
    path.write_text(json.dumps(good) + "\n" + json.dumps({**good, "label": "maybe"}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"labels.jsonl:2: field 'label' must be"):
        labels_from_file(path)
    path.write_text(json.dumps({**good, "answer": None}) + "\n", encoding="utf-8")
    with pytest.raises(InvalidInputError, match=r"labels.jsonl:1: field 'answer' must be a string, got null"):
        labels_from_file(path)
    path.write_text(json.dumps(good) + "\n", encoding="utf-8")
    assert labels_from_file(path)[0].label is True


def test_the_commands_name_a_bad_file_and_an_unknown_model(
    tmp_path: Path, monkeypatch, fresh_settings
) -> None:  # noqa: ANN001
    from typer.testing import CliRunner

    from ember.cli import app

    monkeypatch.setenv("EMBER_HOME", str(tmp_path / "home"))
    bad = tmp_path / "mcq.jsonl"
    bad.write_text('{"id": 1, "question": "q?", "choices": ["a"], "answer": 0}\n', encoding="utf-8")
    result = CliRunner().invoke(app, ["eval", "llm", "--mcq", str(bad)])
    assert result.exit_code == 2 and "mcq.jsonl:1: field 'choices'" in result.output
    result = CliRunner().invoke(app, ["eval", "llm", "--builtin-mcq", "--model", "no-such-model"])
    assert result.exit_code == 1 and "no Ember model 'no-such-model'" in result.output
    result = CliRunner().invoke(app, ["eval", "judge", "calibrate", "--qa", str(tmp_path / "missing.jsonl")])
    assert result.exit_code == 2 and "missing.jsonl: no such file" in result.output
    result = CliRunner().invoke(
        app, ["eval", "judge", "grade", str(tmp_path), "--judge-base-url", "http://x/v1"]
    )
    assert result.exit_code == 2 and "needs its model name" in result.output
