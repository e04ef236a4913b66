"""The run folder: config with provenance, appended items, resume ids, a torn last line, the summary."""

from __future__ import annotations

import json
import threading

import pytest

from ember.evals.runs import open_run


def test_new_run_writes_config_items_and_summary(tmp_path):
    run = open_run(tmp_path, "answers", {"collection": "docs"})
    assert run.path.parent == tmp_path and run.path.name.endswith("-answers")
    config = run.read_config()
    assert config["collection"] == "docs" and config["suite"] == "answers"
    assert {"git_commit", "ember_version", "started_at"} <= config.keys()
    run.append_item({"id": "q1", "match": True})
    run.append_item({"id": 2, "match": False})
    assert run.done_ids() == {"q1", "2"}
    run.write_summary({"match": 0.5})
    assert run.read_summary() == {"match": 0.5}
    assert json.loads((run.path / "summary.json").read_text()) == {"match": 0.5}


def test_two_runs_in_one_second_get_two_folders(tmp_path):
    assert open_run(tmp_path, "agent", {}).path != open_run(tmp_path, "agent", {}).path


def test_resume_reopens_and_skips_a_torn_last_line(tmp_path):
    run = open_run(tmp_path, "answers", {"k": 1})
    run.append_item({"id": "a"})
    with open(run.path / "items.jsonl", "a") as f:
        f.write('{"id": "b", "ma')  # killed mid-write
    again = open_run(tmp_path, "answers", {}, resume=run.path)
    assert again.path == run.path and again.read_config()["k"] == 1
    assert again.done_ids() == {"a"}


def test_resume_of_a_folder_that_is_not_a_run_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="not a run folder"):
        open_run(tmp_path, "answers", {}, resume=tmp_path)


def test_appends_from_threads_keep_whole_lines(tmp_path):
    run = open_run(tmp_path, "answers", {})
    threads = [
        threading.Thread(target=run.append_item, args=({"id": str(i), "x": "y" * 500},)) for i in range(20)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert run.done_ids() == {str(i) for i in range(20)}
