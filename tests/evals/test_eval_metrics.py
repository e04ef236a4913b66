"""Hand-computed metrics: ALCE citation support, pass^k, bootstrap intervals, the paired gate."""

from __future__ import annotations

import numpy as np
import pytest

from ember.evals.agent_suite import pass_hat, pass_hat_k
from ember.evals.citation_support import OverlapSupport, citation_support, markers_resolve
from ember.evals.gate import gate
from ember.evals.runs import open_run
from ember.evals.stats import bootstrap_ci, paired_bootstrap

PASSAGES = {
    1: "The Kelmora Bridge crosses the Vessa river and is 412 meters long.",
    2: "The Tarn Observatory employs 27 astronomers on Mount Orrin.",
}


def test_citation_support_on_a_constructed_answer():
    answer = (
        "The Kelmora Bridge is 412 meters long [1][2]. "  # [1] supports, [2] does not
        "The Tarn Observatory employs 30 astronomers [2]. "  # wrong number: [2] does not support
        "It crosses the Vessa river."  # cites nothing
    )
    support = citation_support(answer, PASSAGES.get, OverlapSupport())
    assert (support.sentences, support.supported_sentences) == (3, 1)  # recall 1/3
    assert (support.citations, support.supported_citations) == (3, 1)  # precision 1/3


def test_an_unresolved_citation_supports_nothing_and_idk_has_no_sentences():
    support = citation_support("The bridge is 412 meters long [7].", PASSAGES.get, OverlapSupport())
    assert (support.citations, support.supported_citations) == (1, 0)
    assert citation_support("I don't know.", PASSAGES.get, OverlapSupport()).sentences == 0
    assert markers_resolve("a [1] b [2, 3]", [1, 2, 3]) is True
    assert markers_resolve("a [1] b [4]", [1, 2, 3]) is False
    assert markers_resolve("no markers", [1]) is None


def test_pass_hat_k_is_tau_bench_definition():
    # task a: 3 of 4 succeed; task b: 1 of 4. pass^1 = (3/4 + 1/4)/2; pass^2 = (C(3,2)/C(4,2) + 0)/2
    successes = {"a": [True, True, True, False], "b": [False, True, False, False]}
    assert pass_hat_k(successes, 1) == pytest.approx(0.5)
    assert pass_hat_k(successes, 2) == pytest.approx((3 / 6) / 2)
    assert pass_hat_k(successes, 4) == 0.0
    records = [{"task_id": t, "success": s} for t, outcomes in successes.items() for s in outcomes]
    assert pass_hat(records) == pytest.approx({"pass^1": 0.5, "pass^2": 0.25, "pass^3": 0.125, "pass^4": 0.0})
    with pytest.raises(ValueError, match="fewer than k=5"):
        pass_hat_k(successes, 5)


def test_bootstrap_ci_covers_a_known_mean_at_the_right_width():
    rng = np.random.default_rng(1)
    data = rng.normal(10.0, 2.0, size=400)  # standard error 2/sqrt(400) = 0.1 → 95% half-width ≈ 0.196
    low, high = bootstrap_ci(data)
    assert low < 10.0 < high
    assert (high - low) / 2 == pytest.approx(1.96 * data.std(ddof=1) / np.sqrt(len(data)), rel=0.12)
    assert bootstrap_ci([1.0, 1.0, 1.0]) == (1.0, 1.0)
    diff, d_low, d_high = paired_bootstrap([0.0] * 50, [1.0] * 25 + [0.0] * 25)
    assert diff == 0.5 and 0.3 < d_low < 0.5 < d_high < 0.7


def _answers_run(tmp_path, matches):
    run = open_run(tmp_path, "answers", {})
    for i, match in enumerate(matches):
        run.append_item({"id": f"q{i}", "match": match, "citation_valid": True, "total_s": 1.0})
    return run


def test_gate_fails_a_planted_regression_and_passes_identical_runs(tmp_path):
    baseline = _answers_run(tmp_path, [True] * 30 + [False] * 10)
    same = _answers_run(tmp_path, [True] * 30 + [False] * 10)
    rows = {r.metric: r for r in gate(baseline, same)}
    assert not any(r.regressed for r in rows.values()) and rows["match"].difference == 0.0
    worse = _answers_run(tmp_path, [True] * 15 + [False] * 25)  # 75% → 37.5%
    regression = {r.metric: r for r in gate(baseline, worse)}["match"]
    assert regression.regressed and regression.difference == pytest.approx(-0.375)
    assert regression.ci_high < 0
    latency = {r.metric: r for r in gate(baseline, worse, ["total_s"])}
    assert not latency["total_s"].regressed
    with pytest.raises(ValueError, match="unknown metric nope"):
        gate(baseline, worse, ["nope"])


def test_summary_derives_self_cited_and_repaired_from_flags():
    from ember.evals.suite_metrics import summarize

    records = [
        {"id": "a", "match": True, "cites": True, "flags": []},
        {"id": "b", "match": False, "cites": True, "flags": ["no_citations", "citations_repaired"]},
        {"id": "c", "match": False, "cites": False, "flags": ["no_citations"]},
        {"id": "d", "match": True},  # an item without flags counts for neither
    ]
    metrics = summarize("answers", records)["metrics"]
    assert (metrics["match"]["mean"], metrics["match"]["n"]) == (0.5, 4)
    assert (metrics["model_cited"]["mean"], metrics["model_cited"]["n"]) == (1 / 3, 3)
    assert (metrics["citations_repaired"]["mean"], metrics["citations_repaired"]["n"]) == (1 / 3, 3)
    assert metrics["ttft_s"]["n"] == 0 and metrics["ttft_s"]["mean"] is None
