import pytest

from ember.retrieval.fusion import convex_combination, reciprocal_rank_fusion


def test_rrf_on_a_hand_made_example():
    bm25 = [(1, 9.0), (2, 7.0), (3, 1.0)]
    dense = [(3, 0.9), (1, 0.8), (4, 0.1)]
    fused = reciprocal_rank_fusion({"bm25": bm25, "dense": dense}, k=60)
    # 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62; 4: 1/63
    assert [cid for cid, _ in fused] == [1, 3, 2, 4]
    assert fused[0][1] == pytest.approx(1 / 61 + 1 / 62)
    assert fused[1][1] == pytest.approx(1 / 61 + 1 / 63)


def test_rrf_k_changes_the_balance_between_depth_and_agreement():
    runs = {"a": [(1, 0), (2, 0), (6, 0), (3, 0)], "b": [(4, 0), (5, 0), (7, 0), (3, 0)]}
    # With a small k, the two rank-1 items beat an item both runs place fourth; with a large k agreement wins.
    assert [c for c, _ in reciprocal_rank_fusion(runs, k=1)][:2] == [1, 4]
    assert reciprocal_rank_fusion(runs, k=1000)[0][0] == 3


def test_convex_combination_uses_min_max_normalized_scores():
    sparse = [(1, 10.0), (2, 5.0), (3, 0.0)]
    dense = [(3, 0.9), (2, 0.7), (4, 0.5)]
    fused = dict(convex_combination(sparse, dense, dense_weight=0.25))
    assert fused == pytest.approx({1: 0.75, 2: 0.75 * 0.5 + 0.25 * 0.5, 3: 0.25, 4: 0.0})
    assert convex_combination(sparse, dense, dense_weight=1.0)[0][0] == 3
    with pytest.raises(ValueError, match="dense_weight"):
        convex_combination(sparse, dense, dense_weight=1.5)
