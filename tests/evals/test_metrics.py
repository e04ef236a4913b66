import random

import pytest
from ranx import Qrels, Run
from ranx import evaluate as ranx_evaluate

from ember.evals.metrics import evaluate


def _random_case(seed: int):
    rng = random.Random(seed)
    docs = [f"d{i}" for i in range(120)]
    qrels, run = {}, {}
    for q in range(40):
        judged = rng.sample(docs, rng.randint(1, 8))
        qrels[f"q{q}"] = {d: rng.choice([1, 1, 2, 3]) for d in judged}
        retrieved = rng.sample(docs, rng.randint(5, 90))
        # Some relevant docs at random depths; distinct scores, as tie order is a convention, not a metric.
        retrieved += [d for d in judged if rng.random() < 0.6 and d not in retrieved]
        scores = rng.sample(range(10_000), len(retrieved))
        run[f"q{q}"] = {d: s / 10_000 for d, s in zip(retrieved, scores, strict=True)}
    run["q3"] = {}  # a query with no results scores zero
    return qrels, run


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_metrics_equal_ranx_on_the_same_runs(seed):
    qrels, run = _random_case(seed)
    ours = evaluate(run, qrels)
    run_for_ranx = {q: docs for q, docs in run.items() if docs}
    reference = ranx_evaluate(
        Qrels(qrels), Run(run_for_ranx), ["ndcg@10", "recall@10", "recall@50", "mrr@10"], make_comparable=True
    )
    assert ours == pytest.approx(reference, abs=1e-9)
    assert 0 < ours["ndcg@10"] < 1


def test_perfect_and_empty_runs():
    qrels = {"q": {"a": 1, "b": 2}}
    assert evaluate({"q": {"b": 2.0, "a": 1.0}}, qrels) == {
        "ndcg@10": 1.0,
        "recall@10": 1.0,
        "recall@50": 1.0,
        "mrr@10": 1.0,
    }
    assert evaluate({}, qrels) == dict.fromkeys(["ndcg@10", "recall@10", "recall@50", "mrr@10"], 0.0)
