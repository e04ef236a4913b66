"""The QA and agent-task evals: datasets, summaries, and runs through the real service and SmolLM2."""

from __future__ import annotations

import json
import math

import pytest

from ember.evals.agent_tasks import (
    AgentTask,
    AgentTaskResult,
    load_agent_tasks,
    run_agent_task,
    summarize_agent_tasks,
)
from ember.evals.answer_scoring import numeric_match
from ember.evals.corpus_collection import ingest_corpus
from ember.evals.qa import FactoidQuestion, FactoidResult, load_factoids, run_factoid, summarize_factoids
from tests.agents.conftest import COLLECTION, facts_service  # noqa: F401 - the shared session fixture


def _write_jsonl(path, rows):
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")
    return path


def test_datasets_load_in_order_up_to_a_limit(tmp_path):
    factoids = _write_jsonl(
        tmp_path / "factoid.jsonl",
        [
            {"id": "f1", "question": "How long?", "answer": "412 meters", "answer_type": "numeric", "x": 1},
            {"id": "f2", "question": "Who?", "answer": "Ilse Marten", "answer_type": "text"},
        ],
    )
    assert load_factoids(factoids) == [
        FactoidQuestion("f1", "How long?", "412 meters", "numeric"),
        FactoidQuestion("f2", "Who?", "Ilse Marten", "text"),
    ]
    assert [q.id for q in load_factoids(factoids, limit=1)] == ["f1"]
    tasks = _write_jsonl(
        tmp_path / "tasks.jsonl",
        [
            {"id": "t1", "task": "Twice 8?", "answer": 16, "tolerance": 0.02},
            {"id": 2, "task": "?", "answer": 1},
        ],
    )
    assert load_agent_tasks(tasks) == [AgentTask("t1", "Twice 8?", 16, 0.02), AgentTask("2", "?", 1, 0.01)]


def test_datasets_name_the_file_of_a_bad_row(tmp_path):
    missing = _write_jsonl(tmp_path / "factoid.jsonl", [{"id": "f1", "question": "How long?"}])
    with pytest.raises(ValueError, match="factoid.jsonl: every question needs"):
        load_factoids(missing)
    broken = tmp_path / "tasks.jsonl"
    broken.write_text('{"id": "t1", "task": "x", "answer": 1}\n{not json\n', encoding="utf-8")
    with pytest.raises(ValueError, match="tasks.jsonl:2: not valid JSON"):
        load_agent_tasks(broken)


def _factoid(id_, match, cited, cited_valid, flags=(), top_dense=0.5) -> FactoidResult:
    return FactoidResult(id_, 1.0, 2.0, match, cited, cited_valid, list(flags), top_dense, 10, "text")


def test_factoid_summary_counts_matches_citations_and_abstentions():
    rows = dict(
        summarize_factoids(
            [
                _factoid("a", True, 2, 1, ["citations_repaired"], top_dense=0.8),
                _factoid("b", False, 0, 0, ["no_relevant_passages"], top_dense=0.2),
            ]
        )
    )
    assert rows["exact/numeric match"] == "1/2 (50%)"
    assert rows["citation validity (cited passages containing the answer)"] == "1/2 (50%)"
    assert rows["answers whose citations were repaired"] == "1/2 (50%)"
    assert rows["answers citing nothing after repair"] == "1/2 (50%)"
    assert rows['"I don\'t know" (relevance threshold)'] == "1/2 (50%)"
    assert rows["top dense score: min / p10 / median"] == "0.20 / 0.20 / 0.50"
    assert rows["RAG time to first token, median / p90 (s)"] == "1.0 / 1.0"


def test_agent_summary_counts_success_tool_use_and_failures():
    results = [
        AgentTaskResult("a", 3.0, True, "agent", ["search", "calculator"], [], "16"),
        AgentTaskResult("b", 5.0, False, "agent_fallback", [], ["loop_guard:repeat"], "?"),
    ]
    rows = dict(summarize_agent_tasks(results))
    assert rows["agent task success"] == "1/2 (50%)"
    assert rows["agent: model called a tool"] == rows["agent: fell back to retrieve → answer"] == "1/2 (50%)"
    assert rows["agent: used search then calculator"] == "1/2 (50%)"
    assert rows["agent: loop guard / malformed-call failure"] == "1/2 (50%)"
    assert rows["agent total latency, median (s)"] == "4.0"


def test_summaries_of_an_empty_run_say_not_available():
    factoid_rows, agent_rows = dict(summarize_factoids([])), dict(summarize_agent_tasks([]))
    assert factoid_rows["exact/numeric match"] == agent_rows["agent task success"] == "n/a"
    assert math.isnan(float(factoid_rows["RAG total latency, median (s)"]))


def test_corpus_is_ingested_one_titled_document_per_row(service, tmp_path):
    corpus = _write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {"_id": "d1", "title": "Kelmora Bridge", "text": "The bridge is 412 meters long."},
            {"_id": "d2", "title": "Tarn Observatory", "text": "It employs 27 astronomers."},
        ],
    )
    report = ingest_corpus(service, corpus, "bench", tmp_path / "docs")
    assert not report.failed
    assert sorted(d.title for d in service.list_documents("bench")) == ["Kelmora Bridge", "Tarn Observatory"]
    assert (tmp_path / "docs" / "00000.md").read_text().startswith("# Kelmora Bridge\n\n")


def test_factoid_run_scores_the_answer_and_its_cited_passages(facts_service):  # noqa: F811
    item = FactoidQuestion("f1", "How long is the Kelmora Bridge?", "412 meters", "numeric")
    result = run_factoid(facts_service, COLLECTION, item, max_tokens=24)
    assert 0 < result.ttft_s <= result.total_s and result.completion_tokens > 0
    assert result.cited > 0 and 0 < result.cited_valid <= result.cited  # the Kelmora passage holds 412
    assert result.top_dense > 0.3 and result.answer
    unanswerable = FactoidQuestion("f2", "Who painted the Mona Lisa?", "Leonardo", "text")
    abstained = run_factoid(facts_service, COLLECTION, unanswerable, max_tokens=24)
    assert "no_relevant_passages" in abstained.flags and abstained.cited == 0 and not abstained.match


def test_agent_task_run_records_its_path_and_tools(facts_service):  # noqa: F811
    item = AgentTask("t1", "What does a ticket to the Glass Orchard cost?", 8)
    result = run_agent_task(facts_service, COLLECTION, item, max_tokens=32)
    assert result.path in ("agent", "agent_fallback") and result.total_s > 0
    assert all(isinstance(tool, str) for tool in result.tools)
    assert result.success == numeric_match(result.answer, 8)
