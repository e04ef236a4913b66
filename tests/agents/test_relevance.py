from ember.agents.relevance import RelevanceThreshold
from ember.retrieval.types import Hit, StageResult


def hit(**stages: float) -> Hit:
    return Hit(1, 1, "t", "", "text", 0.0, stages={n: StageResult(1, s) for n, s in stages.items()})


def test_the_dense_cosine_decides_even_when_a_reranker_ran():
    threshold = RelevanceThreshold(min_dense=0.25, min_rerank=0.0)
    assert not threshold.relevant(hit(dense=0.1, rerank=5.0))  # listwise scores have no fixed zero
    assert threshold.relevant(hit(dense=0.4, rerank=-3.0))


def test_the_rerank_score_decides_for_hits_the_dense_stage_missed():
    threshold = RelevanceThreshold(min_dense=0.25, min_rerank=0.0)
    assert threshold.relevant(hit(bm25=12.0, rerank=1.5))
    assert not threshold.relevant(hit(bm25=12.0, rerank=-1.5))
    assert not threshold.relevant(hit(bm25=12.0))
    assert threshold.relevant(hit())  # no stage scores: taken as given
