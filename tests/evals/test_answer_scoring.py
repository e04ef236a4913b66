"""Answer scoring: quantities only as quantities, citation markers never read as numbers."""

from __future__ import annotations

import pytest

from ember.evals.answer_scoring import (
    all_quantities_match,
    answer_match,
    exact_match,
    looped,
    numeric_match,
    quantities,
    strip_citations,
    token_f1,
)


@pytest.mark.parametrize(
    "response",
    [
        "The answer is [2].",
        "The answer is [1, 2].",
        "It uses a 2-gram model [1].",
        "Weights are stored in 2-bit precision.",
        "GPT-2 is mentioned in the passage.",
        "Llama 2 was trained on more data.",
        "See Table 2 for details.",
        "It ran on an A2 instance.",
        "Version 2.0.1 of the library.",
    ],
)
def test_markers_words_and_names_are_not_the_answer_2(response):
    assert not numeric_match(response, "2")
    assert not numeric_match(response, 2.0)


def test_a_real_quantity_next_to_a_marker_still_counts():
    assert numeric_match("The bridge is 412 meters long [1].", "412 meters")
    assert numeric_match("It has 2 [1] heads.", 2)
    assert strip_citations("long [1], wide [2, 3].") == "long, wide."


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("8,602 points", [8602.0]),
        ("3.3 × 10¹⁸ FLOPs", [3.3e18]),
        ("3.3x10^18", [3.3e18]),
        ("a rate of 1e-8", [1e-8]),
        ("70 billion parameters", [70e9]),
        ("GPT-3 has 175B parameters", [175e9]),
        ("66M vs 110M", [66e6, 110e6]),
        ("In 2017 it had 12 layers", [2017.0, 12.0]),
        ("the 4-bit and 4-gram cases", []),
        ("T = 4", [4.0]),
        ("The original 2017 Transformer uses 512 tokens (Vaswani et al., 2017) (2017)", [512.0]),
        ("a window of 2048 tokens", [2048.0]),
    ],
)
def test_quantities(text, expected):
    assert [q.value for q in quantities(text)] == pytest.approx(expected)


@pytest.mark.parametrize(
    ("response", "gold", "expected"),
    [
        ("about 60 cases", "60+ documented cases", True),
        ("more than 130,000 citations", "130,000+ citations", True),
        ("130000 citations", "130,000+ citations", True),
        ("roughly 21 tokens per parameter", "~20 tokens per parameter", True),  # ~ widens to 5%
        ("22 tokens per parameter", "~20 tokens per parameter", False),
        ("20.4 tokens", "20 tokens", True),  # at the precision the gold is written in
        ("20.6 tokens", "20 tokens", False),
        ("12.5 hours", "12 hours", False),  # halfway is not the gold
        ("The answer is: 50,257.", "50,000 merges", False),  # within 1%, but another number
        ("50,000 merges", "50,000 merges", True),
        ("a 17.66% drop", "a 17.7% relative BLEU drop", True),
        ("a 17.8% drop", "a 17.7% relative BLEU drop", False),
        ("a drop of 17.7%", "a 17.7% relative BLEU drop", True),
        ("a drop of 0.177", "a 17.7% relative BLEU drop", True),  # a percent's fraction
        ("less than 1% of parameters", "<1%", True),
        ("1.4 trillion tokens", "1.4 trillion tokens", True),
        ("1.4 tokens", "1.4 trillion tokens", False),  # the scale word matters
        ("3.3 × 10¹⁸", "3.3 × 10¹⁸ FLOPs", True),
        ("a 100× reduction", "100× less labeled data", True),
        ("about 50257 tokens", "50,257 tokens", True),
        ("No number here.", "4 categories", False),
    ],
)
def test_numeric_match(response, gold, expected):
    assert numeric_match(response, gold) is expected


def test_short_answers_need_every_gold_quantity():
    assert all_quantities_match("from 18% to 57% accuracy", "18% → 57% accuracy")
    assert not all_quantities_match("57% accuracy", "18% → 57% accuracy")
    assert all_quantities_match("between 2 and 3 times", "~2–3× the forward-pass FLOPs")
    assert all_quantities_match("no numbers", "GELU vs ReLU") is None
    assert answer_match("66 million and 110 million parameters", "66M vs 110M parameters", "short")
    assert not answer_match("66 million [110]", "66M vs 110M parameters", "short")
    assert answer_match("It is GELU.", "GELU", "short")


def test_gold_numbers_match_within_their_tolerance():
    assert numeric_match("about 2.52 times", 2.5)  # 1% by default
    assert not numeric_match("about 2.6 times", 2.5)
    assert numeric_match("about 2.6 times", 2.5, tolerance=0.05)


def test_exact_match_and_token_f1():
    assert exact_match("It was opened by ILSE MARTEN, an engineer [1].", "Ilse Marten (engineer)")
    assert not exact_match("Nobody knows.", "Ilse Marten")
    assert not exact_match("anything", "(only an aside)")
    # "the cat sat" vs "cat sat down": 2 common tokens; precision 2/3, recall 2/3 → F1 2/3
    assert token_f1("the cat sat [3]", "cat sat down") == pytest.approx(2 / 3)
    assert token_f1("dog", "cat") == 0.0


def test_an_answer_loops_when_guarded_or_repeating_at_max_tokens():
    run = "the model repeats this sentence of eight words"
    assert looped(f"{run}. {run}.", [], hit_max_tokens=True)
    assert not looped(f"{run}. {run}.", [], hit_max_tokens=False)  # it stopped by itself
    assert not looped(f"{run}, and then it ends well enough.", [], hit_max_tokens=True)
    assert looped("short", ["repetition_stopped"], hit_max_tokens=False)
