from ember.agents.relevance import RelevanceThreshold
from ember.retrieval.types import Hit, StageResult

THRESHOLD = RelevanceThreshold(min_dense=0.25, min_rerank=0.0, lexical_rank=3)


def hit(chunk_id: int = 1, **stages: tuple[int, float]) -> Hit:
    return Hit(chunk_id, 1, "t", "", "text", 0.0, stages={n: StageResult(*rs) for n, rs in stages.items()})


def test_the_dense_cosine_decides_even_when_a_reranker_ran():
    assert THRESHOLD.grade([hit(dense=(1, 0.1), rerank=(1, 5.0))]) == []  # listwise scores have no zero
    strong = hit(dense=(1, 0.4), rerank=(1, -3.0))
    assert THRESHOLD.grade([strong]) == [strong]


def test_the_rerank_score_decides_for_hits_the_dense_stage_missed():
    reranked = hit(bm25=(5, 12.0), rerank=(1, 1.5))
    assert THRESHOLD.grade([reranked]) == [reranked]
    assert THRESHOLD.grade([hit(bm25=(5, 12.0), rerank=(1, -1.5))]) == []
    bare = hit()
    assert THRESHOLD.grade([bare]) == [bare]  # no stage scores: taken as given


def test_a_bm25_only_hit_is_kept_when_the_search_passes_and_bm25_ranks_it_high():
    dense = hit(1, bm25=(2, 9.0), dense=(1, 0.5))
    bm25_only = hit(2, bm25=(1, 14.0))  # beyond the dense stage's depth: no dense score at all
    deep_bm25_only = hit(3, bm25=(7, 3.0))
    weak_dense_top_bm25 = hit(4, bm25=(3, 8.0), dense=(40, 0.1))
    weak_dense = hit(5, bm25=(9, 2.0), dense=(30, 0.1))
    graded = THRESHOLD.grade([dense, bm25_only, deep_bm25_only, weak_dense_top_bm25, weak_dense])
    assert graded == [dense, bm25_only]  # a hit with a dense score is judged on it, whatever BM25 says


def test_a_search_whose_best_dense_score_fails_is_refused_even_with_bm25_hits():
    assert THRESHOLD.grade([hit(1, bm25=(1, 14.0)), hit(2, bm25=(2, 9.0), dense=(3, 0.2))]) == []
    assert THRESHOLD.grade([]) == []
