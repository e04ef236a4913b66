"""The answer scoring rules as they stand (moved from bench/answer; a later issue revises them)."""

import pytest

from ember.evals.answer_scoring import answer_match, contains_match, numbers, numeric_match, passage_contains


def test_numbers_reads_separators_exponents_powers_and_scale_words():
    assert numbers("8,602 tokens, .5 of them, 1e9 steps") == [8602.0, 0.5, 1e9]
    assert numbers("about 3 × 10¹⁸ FLOPs or 2x10^-3") == [3e18, 2e-3]
    assert numbers("70 billion and 66M parameters") == [70e9, 66e6]
    assert numbers("a bridge 412 m long") == [412.0]  # a lone unit letter is not a scale


def test_numeric_match_is_relative_to_the_gold_number():
    assert numeric_match("It has 1.32 billion tokens.", 1320000000, tolerance=0.02)
    assert not numeric_match("It has 1.5 billion tokens.", 1320000000, tolerance=0.02)
    assert numeric_match("The catalogue lists 60 cases.", "60+ documented cases")  # its first number
    assert not numeric_match("Sixty cases.", "no number here")


def test_text_match_ignores_case_punctuation_and_a_parenthesised_aside():
    assert contains_match("It was opened by ILSE MARTEN, an engineer.", "Ilse Marten (engineer)")
    assert not contains_match("Nobody knows.", "Ilse Marten")
    assert not contains_match("anything", "(only an aside)")


@pytest.mark.parametrize(
    ("text", "gold", "answer_type", "expected"),
    [
        ("Visitors pay 8 crowns.", 8, "numeric", True),
        ("Visitors pay 9 crowns.", 8, "numeric", False),
        ("The Kelmora Bridge crosses the Vessa river.", "Vessa river", "text", True),
    ],
)
def test_answers_and_passages_are_scored_by_answer_type(text, gold, answer_type, expected):
    assert answer_match(text, gold, answer_type) is expected
    assert passage_contains(text, gold, answer_type) is expected
