"""The automatic checks that decide whether a model's own sample can be a DPO pair's rejected side."""

from ember.platform.alignment.own_samples import failed_checks

NUMBER = {"citation": 2, "number": "1,200"}


def test_a_cited_answer_with_the_gold_number_passes():
    assert failed_checks("The mill employs 1,200 workers [2].", NUMBER) == []


def test_each_failure_is_named():
    assert failed_checks("The mill employs 1,200 workers.", NUMBER) == ["uncited"]
    assert failed_checks("The mill employs 1,200 workers [1].", NUMBER) == ["wrong_citation"]
    assert failed_checks("The mill employs 1,300 workers [2].", NUMBER) == ["wrong_number"]
    # a number that only contains the gold one is not it
    assert failed_checks("The mill employs 21,200 workers [2].", NUMBER) == ["wrong_number"]
    looped = "The mill employs 1,200 workers [2]. " + "It is big. " * 6
    assert failed_checks(looped, NUMBER) == ["loop"]


def test_a_sample_cut_by_its_token_limit_fails_only_what_it_already_got_wrong():
    assert failed_checks("The mill employs", NUMBER, finished=False) == []
    assert failed_checks("The mill employs 1,300 workers [1] and", NUMBER, finished=False) == [
        "wrong_citation"
    ]
    looped = "The mill employs 1,200 workers [2]. " + "It is big. " * 6
    assert failed_checks(looped, NUMBER, finished=False) == ["loop"]
    assert failed_checks("The mill", {"abstain": True}, finished=False) == ["answered_without_support"]


def test_a_span_question_needs_only_the_right_citation():
    assert failed_checks("Wool was spun there [3].", {"citation": 3, "number": None}) == []
    assert failed_checks("Wool was spun there [1] [2].", {"citation": 3, "number": None}) == [
        "wrong_citation"
    ]


def test_an_abstention_pair_rejects_any_answer():
    assert failed_checks("I don't know.", {"abstain": True}) == []
    assert failed_checks("The mill employs 1,200 workers [1].", {"abstain": True}) == [
        "answered_without_support"
    ]
