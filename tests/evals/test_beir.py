import json

import pytest

from ember.evals.beir import load_beir


def _write_set(root, corpus_in_dir=True):
    root.mkdir(parents=True, exist_ok=True)
    corpus = [
        {"_id": "a", "title": "Alpha", "text": "first"},
        {"_id": "b", "title": "Beta", "text": "second"},
    ]
    corpus_path = root / "corpus.jsonl" if corpus_in_dir else root.parent / "corpus.jsonl"
    corpus_path.write_text("\n".join(json.dumps(d) for d in corpus))
    (root / "queries.jsonl").write_text('{"_id": "q1", "text": "one"}\n{"_id": "q2", "text": "unjudged"}\n')
    (root / "qrels").mkdir(exist_ok=True)
    (root / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tb\t1\n")
    return corpus_path


def test_loads_a_set_with_a_shared_corpus_one_level_up(tmp_path):
    corpus = _write_set(tmp_path / "sets" / "dev", corpus_in_dir=False)
    with pytest.raises(ValueError, match="corpus.jsonl does not exist.*--corpus"):
        load_beir(tmp_path / "sets" / "dev")
    data = load_beir(tmp_path / "sets" / "dev", corpus_file=corpus)
    assert data.name == "dev" and data.corpus["b"] == {"title": "Beta", "text": "second"}
    assert data.queries == {"q1": "one"} and data.qrels == {"q1": {"b": 1}}


def test_qrels_naming_unknown_documents_are_rejected(tmp_path):
    _write_set(tmp_path / "s")
    (tmp_path / "s" / "qrels" / "test.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tzzz\t1\n")
    with pytest.raises(ValueError, match="missing from .*zzz"):
        load_beir(tmp_path / "s")
