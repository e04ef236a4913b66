from pydoc_data.topics import topics

import numpy as np
import pytest
from rank_bm25 import BM25Okapi

from ember.retrieval.bm25 import BM25
from ember.retrieval.terms import TermSplitter

QUERIES = [
    "for loop statement",
    "raise an exception with traceback",
    "the a is of",
    "lambda",
    "yield from generator",
]


@pytest.fixture(scope="module")
def corpus() -> list[list[str]]:
    tokenize = TermSplitter()
    return [tokenize(p) for text in topics.values() for p in text.split("\n\n") if p.strip()]


def test_scores_equal_rank_bm25_on_pydoc_topics(corpus):
    reference, ours = BM25Okapi(corpus), BM25()
    ours.upsert(enumerate(corpus))
    assert len(corpus) > 2000
    negative_idf_terms = [
        t for t, idf in reference.idf.items() if idf == reference.epsilon * reference.average_idf
    ]
    assert negative_idf_terms, "the corpus must exercise rank_bm25's epsilon floor"
    tokenize = TermSplitter()
    for query in QUERIES + [" ".join(negative_idf_terms[:3])]:
        np.testing.assert_allclose(
            ours.scores(tokenize(query)), reference.get_scores(tokenize(query)), atol=1e-6
        )


def test_deletes_and_updates_match_a_fresh_rank_bm25(corpus):
    ours = BM25()
    ours.upsert(enumerate(corpus))
    ours.delete(range(0, 300))
    ours.upsert(
        [(5000, corpus[0] + corpus[1]), (7, ["lambda", "lambda"])]
    )  # a new chunk; 7 comes back changed
    expected_ids = list(range(300, len(corpus))) + [5000, 7]
    reference = BM25Okapi(
        [corpus[i] for i in range(300, len(corpus))] + [corpus[0] + corpus[1], ["lambda"] * 2]
    )
    tokenize = TermSplitter()
    for compacted in (False, True):
        if compacted:
            ours.compact()
        for query in QUERIES:
            scores = ours.scores(tokenize(query))
            by_id = dict(zip(ours.ids.tolist(), scores, strict=True))
            got = np.array([by_id[i] for i in expected_ids])
            np.testing.assert_allclose(got, reference.get_scores(tokenize(query)), atol=1e-6)


def test_search_returns_top_k_in_score_order_and_survives_save(corpus, tmp_path):
    ours = BM25()
    ours.upsert(enumerate(corpus))
    ids, scores = ours.search(TermSplitter()("yield from generator"), 10)
    full = ours.scores(TermSplitter()("yield from generator"))
    assert list(ids) == list(np.argsort(-full, kind="stable")[:10])
    assert list(scores) == sorted(scores, reverse=True)
    ours.save(tmp_path / "bm25.npz")
    loaded = BM25.load(tmp_path / "bm25.npz")
    np.testing.assert_array_equal(loaded.search(TermSplitter()("yield from generator"), 10)[0], ids)
