"""The judge over a real OpenAI-compatible HTTP server (serving the real SmolLM2): one real round trip
per verdict, the key from the environment, several verdicts at once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ember.agents.backends import LocalBackend, RemoteError
from ember.evals.judge.judge import API_KEY_VARIABLE, JudgeSpec
from ember.evals.judge.prompts import grade_messages
from ember.evals.judge.run_judging import grade_run
from ember.evals.judge.verdicts import PASS_FAIL, parse_grade
from ember.evals.runs import open_run
from ember.llm.inference.chat import ChatModel
from ember.platform.errors import InvalidInputError
from tests.agents.openai_server import make_app, serve

QUESTION, REFERENCE = "How long is the Kelmora Bridge?", "412 meters"


def _no_service() -> None:
    raise AssertionError("a remote judge needs no service")


@pytest.fixture(scope="module")
def local(smollm2_models_dir: Path) -> LocalBackend:
    return LocalBackend(ChatModel.load(smollm2_models_dir / "smollm2-135m-instruct"))


@pytest.fixture(scope="module")
def base_url(local: LocalBackend) -> Iterator[str]:
    with serve(make_app(local, "judge-key")) as url:
        yield url


def test_a_remote_judge_gives_the_verdict_the_model_wrote(
    base_url: str, local: LocalBackend, monkeypatch
) -> None:  # noqa: ANN001
    monkeypatch.setenv(API_KEY_VARIABLE, "judge-key")
    judge = JudgeSpec(base_url, "smollm2", max_tokens=32).build(_no_service)
    verdict = judge.grade(QUESTION, "It is 412 meters long.", REFERENCE, PASS_FAIL)
    messages = grade_messages(QUESTION, "It is 412 meters long.", REFERENCE, PASS_FAIL)
    direct = local.chat(messages, max_tokens=32, temperature=0.0).text
    assert verdict.replies[0] == direct  # the HTTP round trip carried the model's own reply
    assert verdict.value == parse_grade(verdict.replies[-1], PASS_FAIL) and len(verdict.replies) in (1, 2)
    assert judge.name == "smollm2"


def test_a_remote_judge_grades_a_run_concurrently(base_url: str, tmp_path: Path) -> None:
    run = open_run(tmp_path / "runs", "answers", {})
    for n, answer in enumerate(["412 meters.", "It is 99 meters.", "I don't know."]):
        run.append_item({"id": f"q{n}", "question": QUESTION, "gold": REFERENCE, "response": answer})
    judge = JudgeSpec(base_url, "smollm2", "judge-key", 24).build(_no_service)
    summary = grade_run(judge, run.path, tmp_path / "runs", concurrency=3)
    graded = open_run(tmp_path, "", {}, resume=Path(summary["run_dir"])).read_items()
    assert summary["items"] == 3 and {i["id"] for i in graded} == {"q0", "q1", "q2"}
    assert all(i["judge_replies"] and all(isinstance(r, str) for r in i["judge_replies"]) for i in graded)
    assert summary["unparsed_share"] == sum(i["judge_grade"] is None for i in graded) / 3


def test_a_wrong_key_or_a_missing_model_is_a_clear_error(base_url: str) -> None:
    with pytest.raises(RemoteError, match="answered 401"):
        JudgeSpec(base_url, "smollm2", "wrong").build(_no_service).grade("q?", "a", "b")
    with pytest.raises(InvalidInputError, match="needs its model name"):
        JudgeSpec(base_url).build(_no_service)
    with pytest.raises(InvalidInputError, match="--judge: give 'local' or a URL; .*must start with http"):
        JudgeSpec("localhost:9", "m").build(_no_service)
