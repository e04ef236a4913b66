"""Cutting a loop at the end of a generated answer (greedy decoding on a small or int8 model)."""

from __future__ import annotations

import pytest

from ember.agents.repetition import cut_loop

SENTENCE = "It is used to create a new class object [2]. "


@pytest.mark.parametrize(
    ("looping", "kept"),
    [
        (
            "Run pip install --no-deps-local-local-local-local-local-local-local",
            "Run pip install --no-deps-local",
        ),
        (
            "The pass statement is a placeholder [1]. " + SENTENCE * 4,
            "The pass statement is a placeholder [1]. " + SENTENCE.strip(),
        ),
        # caught mid-sentence: whole sentences are kept
        (
            "The pass statement is a placeholder [1]. " + SENTENCE * 3 + "It is used",
            "The pass statement is a placeholder [1]. " + SENTENCE.strip(),
        ),
    ],
)
def test_a_loop_at_the_end_is_cut_to_one_copy(looping, kept):
    assert cut_loop(looping) == (kept, True)


def test_a_loop_whose_copies_wrap_differently_is_a_loop():
    # The int8 SmolLM2's fallback answer to "What does the pass statement do?", as it streamed.
    first = "The pass statement is a placeholder for a statement that is syntactically equivalent to a"
    copy = (
        f"{first}\nfunction definition [1]. It is used to create a new execution frame, which is then "
        "discarded but its\nlocal namespace is saved [2]. "
    )
    text, looped = cut_loop(copy.replace("\n", " ", 1) + copy * 3 + "The pass statement")
    assert looped and text.count("placeholder") == 1


def test_a_loop_that_counts_up_is_a_loop():
    # The int8 SmolLM2's fallback answer to "How do I install Ember?" (greedy, 200 tokens).
    counting = "".join(f"The answer is:\n\n```\n# {n}\n\n```\n\n" for n in range(1, 13)) + "The answer is:"
    text, looped = cut_loop(counting)
    assert looped and "# 1" in text and "# 2" not in text


@pytest.mark.parametrize(
    "text",
    [
        "The pass statement is a null operation [1]. Nothing happens when it executes [1].",
        "| a | b |\n|---|---|\n| 1 | 2 |",
        "Count: 1, 2, 3, 4, 5, 6, 7, 8.",
        "Wait...",
        "It repeats: go, go, go!",
    ],
)
def test_ordinary_answers_are_left_alone(text):
    assert cut_loop(text) == (text, False)
