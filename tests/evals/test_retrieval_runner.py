import json

from ember.evals.beir import BeirDataset
from ember.evals.retrieval_runner import run_retrieval_eval, write_report

CORPUS = {
    "py-loops": (
        "Python loops",
        "A for statement iterates over the items of any sequence.\n\nwhile repeats.",
    ),
    "py-exc": ("Exceptions", "The try statement catches exceptions raised in its block with except clauses."),
    "gpt": (
        "GPT-4 tokenizer",
        "The GPT-2 byte-pair vocabulary has 50,257 tokens including one special token.",
    ),
    "rivers": ("Rivers of Europe", "The Danube flows through ten countries into the Black Sea."),
    "cooking": ("Bread", "Knead the dough, let it rise for an hour, then bake at 230 degrees."),
}


def test_runner_maps_passages_to_documents_and_writes_reports(tmp_path):
    data = BeirDataset(
        "tiny",
        {k: {"title": t, "text": x} for k, (t, x) in CORPUS.items()},
        {
            "q1": "how many tokens in the 50,257 vocabulary",
            "q2": "catching an error raised by code",
            "q3": "Danube",
        },
        {"q1": {"gpt": 1}, "q2": {"py-exc": 1}, "q3": {"rivers": 1}},
    )
    report = run_retrieval_eval(data, modes=["bm25", "dense", "hybrid", "hybrid+rerank"], max_words=12)
    assert report.passages > report.documents  # the loops document was split in two
    assert [r.mode for r in report.results] == ["bm25", "dense", "hybrid"]
    assert report.notes == ["hybrid+rerank not run: no reranker given (--reranker)"]
    for result in report.results:
        assert set(result.run) == {"q1", "q2", "q3"}
        assert all(len(set(docs)) == len(docs) for docs in result.run.values())
        assert result.latency_ms_p95 >= result.latency_ms_p50 > 0
    by_mode = {r.mode: r for r in report.results}
    assert by_mode["hybrid"].metrics["mrr@10"] == 1.0
    assert max(by_mode["bm25"].run["q1"], key=by_mode["bm25"].run["q1"].get) == "gpt"

    json_path, md_path = write_report(report, tmp_path / "out")
    saved = json.loads(json_path.read_text())
    assert saved["results"]["hybrid"]["mrr@10"] == 1.0
    assert "| hybrid | 1.0000" in md_path.read_text()
