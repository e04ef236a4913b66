"""`ember eval answers / agent / report / gate / all` end to end with the real SmolLM2 model on a tiny
collection written here; and bad input refused with the file, line and field, changing nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ember.agents.backends import LocalBackend
from ember.cli import app
from ember.evals.judge.verdicts import PASS_FAIL, SCALE, parse_grade
from ember.llm.inference.chat import ChatModel
from ember.platform.service import EmberService
from tests.agents.openai_server import make_app, serve

CORPUS = [
    {"_id": "doc:bridge", "title": "Kelmora Bridge", "text": "The Kelmora Bridge is 412 meters long."},
    {
        "_id": "doc:orchard",
        "title": "Glass Orchard",
        "text": "The Glass Orchard grows 140 varieties of pear.",
    },
    {"_id": "doc:tarn", "title": "Tarn Observatory", "text": "The Tarn Observatory employs 27 astronomers."},
]
QA = [
    {
        "id": "q1",
        "question": "How long is the Kelmora Bridge?",
        "answer": "412 meters",
        "answer_type": "numeric",
        "relevant_ids": ["doc:bridge"],
        "source": "test",
    },
    {
        "id": "q2",
        "question": "How many varieties of pear does the Glass Orchard grow?",
        "answer": "140",
        "answer_type": "numeric",
        "relevant_ids": ["doc:orchard"],
        "source": "test",
    },
]
TASKS = [
    {
        "id": "t1",
        "task": "How many astronomers would two Tarn Observatories employ?",
        "answer": 54,
        "answer_type": "numeric",
        "tolerance": 0.01,
        "needs": ["search", "calculator"],
        "relevant_ids": ["doc:tarn"],
    },
]
MAX_TOKENS = "16"


def _jsonl(path: Path, rows: list) -> Path:
    path.write_text(
        "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in rows), encoding="utf-8"
    )
    return path


@pytest.fixture
def ember(tmp_path, smollm2_models_dir, monkeypatch, fresh_settings):
    home = tmp_path / "home"
    monkeypatch.setenv("EMBER_HOME", str(home))
    monkeypatch.setenv("EMBER_LLM_MODEL", str(smollm2_models_dir / "smollm2-135m-instruct"))
    monkeypatch.setenv("EMBER_RERANKER", "")
    monkeypatch.delenv("EMBER_DATABASE_URL", raising=False)
    for name in ("HF_HUB_DISABLE_PROGRESS_BARS", "TRANSFORMERS_VERBOSITY"):
        monkeypatch.setenv(name, os.environ.get(name, ""))

    def run(*args: str, code: int = 0):  # noqa: ANN202
        result = CliRunner().invoke(app, ["eval", *args])
        assert result.exit_code == code, (result.stdout, result.stderr, result.exception)
        return result

    run.home = home
    return run


def _runs(home: Path, suite: str) -> list[Path]:
    return sorted(p for p in (home / "runs").glob(f"*-{suite}*") if p.is_dir())


def test_answers_run_resume_report_and_gate(ember, tmp_path):
    corpus, qa = _jsonl(tmp_path / "corpus.jsonl", CORPUS), _jsonl(tmp_path / "qa.jsonl", QA)
    out = ember(
        "answers",
        str(qa),
        "-c",
        "facts",
        "--corpus",
        str(corpus),
        "--max-tokens",
        MAX_TOKENS,
        "--concurrency",
        "2",
        "--judge",
        "local",
        "--judge-max-tokens",
        "8",
    ).stdout
    assert "exact/numeric match" in out and "citation support precision" in out and "judge score" in out
    (run,) = _runs(ember.home, "answers")
    config = json.loads((run / "config.json").read_text())
    assert config["collection"] == "facts" and config["quantization"] == "none"
    assert config["support_scorer"].startswith("content-word overlap")  # no cross-encoder installed
    items = [json.loads(line) for line in (run / "items.jsonl").read_text().splitlines()]
    assert sorted(i["id"] for i in items) == ["q1", "q2"]
    for item in items:
        assert item["retrieval_recall"] == 1.0  # 3 documents, context depth 6: the gold one is retrieved
        assert isinstance(item["gold_in_prompt"], bool) and item["total_s"] >= item["ttft_s"] > 0
        assert item["match"] == (
            ("412" in item["response"]) if item["id"] == "q1" else ("140" in item["response"])
        )
    summary = json.loads((run / "summary.json").read_text())
    assert summary["items"] == 2 and summary["metrics"]["retrieval_recall"]["mean"] == 1.0
    _check_judged(items, summary)
    assert config["judge"] == summary["judge"] and config["judge"].endswith("smollm2-135m-instruct")

    # an interrupted run: only the first item written; --resume scores the other one only, judge included
    first = (run / "items.jsonl").read_text().splitlines()[0]
    (run / "items.jsonl").write_text(first + "\n")
    refused = ember("answers", str(qa), "-c", "facts", "--resume", str(run), code=2).stderr
    assert "that run scored judge '" in refused and "smollm2-135m-instruct', this one None" in refused
    judged = ("--judge", "local", "--judge-max-tokens", "8")
    ember("answers", str(qa), "-c", "facts", "--max-tokens", MAX_TOKENS, "--resume", str(run), *judged)
    lines = (run / "items.jsonl").read_text().splitlines()
    assert lines[0] == first and len(lines) == 2 and len(_runs(ember.home, "answers")) == 1
    _check_judged([json.loads(line) for line in lines], json.loads((run / "summary.json").read_text()))

    ember("report", str(run), str(run), "--out", str(tmp_path / "report"))
    report_md = (tmp_path / "report" / "report.md").read_text()
    assert "## answers" in report_md and "exact/numeric match" in report_md
    assert "judge score" in report_md and "judge verdict unparsed" in report_md
    assert "data:image/png;base64," in (tmp_path / "report" / "report.html").read_text()
    assert (tmp_path / "report" / "answers-metrics.png").stat().st_size > 1000
    gate = ember("gate", "--baseline", str(run), "--candidate", str(run)).stdout
    assert "REGRESSED" not in gate and "match" in gate


def _check_judged(items: list[dict], summary: dict) -> None:
    """Each item holds the judge's 1-5 grade as read from its last reply (None: unparsed after a retry),
    and the summary's judge metrics are the means over the items."""
    for item in items:
        grade, replies = item["judge_grade"], item["judge_replies"]
        assert grade == parse_grade(replies[-1], SCALE) and item["judge_unparsed"] == (grade is None)
        assert len(replies) == (2 if parse_grade(replies[0], SCALE) is None else 1)
        assert item["judge_pass"] == (None if grade is None else grade >= 4)
    metrics = summary["metrics"]
    grades = [i["judge_grade"] for i in items if i["judge_grade"] is not None]
    assert metrics["judge_unparsed"]["mean"] == sum(i["judge_unparsed"] for i in items) / len(items)
    assert metrics["judge_unparsed"]["n"] == len(items) and metrics["judge_grade"]["n"] == len(grades)
    assert metrics["judge_grade"]["mean"] == (sum(grades) / len(grades) if grades else None)
    assert metrics["judge_grade"]["share"] is False and summary["judge_rubric"] == "1-5"


def test_agent_samples_give_pass_hat_k(ember, tmp_path):
    EmberService().ingest(str(_docs(tmp_path)), "facts")
    tasks = _jsonl(tmp_path / "tasks.jsonl", TASKS)
    out = ember(
        "agent", str(tasks), "-c", "facts", "--samples", "2", "--seed", "3", "--max-tokens", MAX_TOKENS
    )
    assert "pass^2" in out.stdout
    (run,) = _runs(ember.home, "agent")
    items = [json.loads(line) for line in (run / "items.jsonl").read_text().splitlines()]
    assert sorted((i["id"], i["seed"]) for i in items) == [("t1#0", 3), ("t1#1", 4)]
    for item in items:
        assert item["fallback"] == (not item["tool_called"]) or item["loop_guard_stop"]
        assert item["steps"] >= 1 and item["tokens"] > 0
        # The trace shows each step's call and what it returned, in the order the tools ran.
        assert [step["tool"] for step in item["trace"]] == item["tools"]
        assert all(isinstance(s["arguments"], dict) and len(s["observation"]) <= 300 for s in item["trace"])
        assert any(s["tool"] == "search" and "<passage" in s["observation"] for s in item["trace"])
    summary = json.loads((run / "summary.json").read_text())
    successes = [i["success"] for i in items]
    assert summary["pass^1"] == sum(successes) / 2 and summary["pass^2"] == float(all(successes))
    assert json.loads((run / "config.json").read_text())["temperature"] == 0.7


def _docs(tmp_path: Path) -> Path:
    docs = tmp_path / "docs"
    docs.mkdir(exist_ok=True)
    for row in CORPUS:
        (docs / f"{row['title']}.md").write_text(f"# {row['title']}\n\n{row['text']}\n", encoding="utf-8")
    return docs


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([QA[0], "{not json"], "qa.jsonl:2: not valid JSON"),
        (
            [QA[0], {k: v for k, v in QA[1].items() if k != "answer_type"}],
            "qa.jsonl:2: field 'answer_type' is missing",
        ),
        ([{**QA[0], "question": 7}], "qa.jsonl:1: field 'question' must be str"),
        ([{**QA[0], "answer_type": "essay"}], "qa.jsonl:1: field 'answer_type' must be one of"),
        ([{**QA[0], "relevant_ids": "doc:bridge"}], "qa.jsonl:1: field 'relevant_ids' must be a list"),
        ([], "qa.jsonl: the file holds no items"),
    ],
)
def test_bad_qa_files_name_file_line_and_field(ember, tmp_path, rows, message):
    service = EmberService()
    service.create_collection("facts")
    qa = _jsonl(tmp_path / "qa.jsonl", rows)
    result = ember("answers", str(qa), "-c", "facts", code=2)
    assert message in result.stderr and "Traceback" not in result.stderr + result.stdout
    assert not (ember.home / "runs").exists() and service.list_conversations() == []


def test_bad_task_file_and_unknown_collection(ember, tmp_path):
    tasks = _jsonl(tmp_path / "tasks.jsonl", [{**TASKS[0], "answer": "fifty-four"}])
    assert (
        "tasks.jsonl:1: field 'answer' must be a number"
        in ember("agent", str(tasks), "-c", "x", code=2).stderr
    )
    ok = _jsonl(tmp_path / "ok.jsonl", TASKS)
    result = ember("agent", str(ok), "-c", "nope", code=2)
    assert "nope" in result.stderr and "Traceback" not in result.stderr
    assert EmberService().list_collections() == [] and not (ember.home / "runs").exists()


def test_all_rejects_an_unknown_section(ember, tmp_path):
    config = tmp_path / "eval.toml"
    config.write_text('[answer]\nqa = "qa.jsonl"\n')
    assert "unknown section [answer]" in ember("all", str(config), code=2).stderr


@pytest.mark.slow  # indexes a corpus twice and answers once: about a minute on two shared cores
def test_all_runs_retrieval_and_answers_into_one_report(ember, tmp_path):
    data = tmp_path / "data"
    (data / "beir" / "qrels").mkdir(parents=True)
    _jsonl(data / "corpus.jsonl", CORPUS)
    _jsonl(data / "qa.jsonl", QA[:1])
    _jsonl(data / "beir" / "queries.jsonl", [{"_id": "r1", "text": "bridge length"}])
    (data / "beir" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nr1\tdoc:bridge\t1\n")
    config = data / "eval.toml"
    config.write_text(
        '[retrieval]\ndatasets = ["beir"]\ncorpus = "corpus.jsonl"\nmodes = ["bm25"]\n'
        f'[answers]\nqa = "qa.jsonl"\ncollection = "facts"\ncorpus = "corpus.jsonl"\n'
        f"max_tokens = {MAX_TOKENS}\n"
        '[report]\nout = "report"\n'
    )
    out = ember("all", str(config)).stdout
    assert "retrieval beir:" in out and "answers:" in out
    report = (data / "report" / "report.md").read_text()
    assert "## retrieval" in report and "bm25 ndcg@10" in report and "## answers" in report
    (retrieval,) = _runs(ember.home, "retrieval")
    assert json.loads((retrieval / "items.jsonl").read_text())["bm25 recall@10"] == 1.0


class _RecordingBackend:
    """The real local model behind the test server, keeping the prompts it was sent."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend, self.prompts = backend, []

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling):  # noqa: ANN204
        self.prompts.append(messages[0]["content"])
        return self.backend.chat(messages, tools, **sampling)


def test_all_with_a_remote_judge_for_answers_and_concurrent_agent_samples(
    ember, tmp_path, smollm2_models_dir, monkeypatch
):
    judge = _RecordingBackend(LocalBackend(ChatModel.load(smollm2_models_dir / "smollm2-135m-instruct")))
    monkeypatch.setenv("EMBER_JUDGE_API_KEY", "judge-key")
    _jsonl(tmp_path / "corpus.jsonl", CORPUS)
    _jsonl(tmp_path / "qa.jsonl", QA[:1])
    _jsonl(tmp_path / "tasks.jsonl", TASKS)
    config = tmp_path / "eval.toml"
    with serve(make_app(judge, "judge-key")) as url:
        config.write_text(
            f'[answers]\nqa = "qa.jsonl"\ncollection = "facts"\ncorpus = "corpus.jsonl"\nmax_tokens = 16\n'
            f'judge = "{url}"\njudge_model = "smollm2"\njudge_rubric = "pass/fail"\njudge_max_tokens = 8\n'
            "judge_concurrency = 2\n"
            '[agent]\ntasks = "tasks.jsonl"\ncollection = "facts"\nsamples = 2\nmax_tokens = 16\n'
            "concurrency = 2\n"
        )
        ember("all", str(config))
    (answers,) = _runs(ember.home, "answers")
    (item,) = [json.loads(line) for line in (answers / "items.jsonl").read_text().splitlines()]
    # every judge reply came over HTTP, and each request was the grade of this answer against its gold
    assert len(judge.prompts) == len(item["judge_replies"]) >= 1
    assert all(f"Reference answer: 412 meters\nAnswer: {item['response']}" in p for p in judge.prompts)
    assert item["judge_grade"] == parse_grade(item["judge_replies"][-1], PASS_FAIL)
    assert item["judge_pass"] == item["judge_grade"] and item["judge_unparsed"] == (
        item["judge_grade"] is None
    )
    summary = json.loads((answers / "summary.json").read_text())
    assert summary["judge"] == "smollm2" and summary["judge_rubric"] == "pass/fail"
    assert summary["metrics"]["judge_unparsed"]["mean"] == float(item["judge_unparsed"])
    assert json.loads((answers / "config.json").read_text())["judge_concurrency"] == 2
    assert "EMBER_JUDGE_API_KEY" not in (answers / "config.json").read_text()
    assert "judge-key" not in (answers / "config.json").read_text()
    (agent,) = _runs(ember.home, "agent")
    assert json.loads((agent / "config.json").read_text())["concurrency"] == 2
    samples = [json.loads(line)["id"] for line in (agent / "items.jsonl").read_text().splitlines()]
    assert sorted(samples) == ["t1#0", "t1#1"]


def test_all_checks_the_judge_options_before_running(ember, tmp_path):
    config = tmp_path / "eval.toml"
    config.write_text('[answers]\nqa = "qa.jsonl"\ncollection = "c"\njudge_model = "m"\n')
    assert "[answers] ['judge_model'] need judge" in ember("all", str(config), code=2).stderr
    config.write_text(
        '[answers]\nqa = "qa.jsonl"\ncollection = "c"\njudge = "local"\njudge_rubric = "1-10"\n'
    )
    assert "judge_rubric must be one of 1-5, pass/fail" in ember("all", str(config), code=2).stderr
    assert not (ember.home / "runs").exists()
