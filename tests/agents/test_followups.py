"""Which questions count as follow-ups, and what is searched for them."""

from __future__ import annotations

import pytest

from ember.agents.rewrite import follow_up_reason, joined, refers_back, standalone_query
from ember.platform.answers import best_dense_score

WITH = "How does the with statement work?"


@pytest.mark.parametrize(
    "question",
    [
        "What does the pass statement do?",  # short, but it names its subject
        "How do I raise an exception?",
        "What is a context manager and how is it used in a with statement?",  # "it" has an antecedent
        "Is it possible to use else with a while loop?",  # a placeholder "it"
        "Which string methods change case?",
        "What is the statement that does nothing?",  # a relative "that"
    ],
)
def test_questions_that_name_their_subject_stand_alone(question):
    assert refers_back(question) == ""
    assert standalone_query(question, WITH) == question


@pytest.mark.parametrize(
    ("question", "reason"),
    [
        ("What methods does it call on the object?", "pronoun"),
        ("How does that differ from nonlocal?", "pronoun"),
        ("Can they be nested?", "pronoun"),
        ("What does a negative step do there?", "pronoun"),
        ("And what about the finally clause?", "ellipsis"),
        ("What about relative imports?", "ellipsis"),
        ("how about async with?", "ellipsis"),
        ("In a generator?", "fragment"),
        ("Any restrictions?", "fragment"),
    ],
)
def test_questions_that_refer_back_are_follow_ups(question, reason):
    assert refers_back(question) == reason
    assert standalone_query(question, WITH) == f"{WITH} {question}"


def test_the_first_question_of_a_conversation_is_never_a_follow_up():
    assert follow_up_reason("Can it be nested?", None) == ""
    assert standalone_query("Can it be nested?", None) == "Can it be nested?"


def test_the_joined_query_keeps_the_end_of_a_long_previous_query():
    previous = " ".join(f"w{i}" for i in range(100))
    assert joined(previous, "And x?").split()[0] == "w60"


def test_a_question_that_finds_nothing_alone_but_something_with_the_previous_turn_is_a_follow_up(
    facts_search,
):
    def grounding(text: str) -> float:
        return best_dense_score(facts_search(text, 10))

    previous = "How long is the Kelmora Bridge?"
    vague = "Who was the engineer responsible?"
    assert refers_back(vague) == ""
    assert grounding(joined(previous, vague)) > grounding(vague)
    assert follow_up_reason(vague, previous, grounding) == "grounding"
    # A question about something else in the collection finds its own passage: it stands alone.
    assert follow_up_reason("How wide is the Tarn Observatory mirror?", previous, grounding) == ""


def test_a_capable_llm_rewrites_only_follow_ups(local_llm):
    backend = local_llm.backend
    assert standalone_query("What does the pass statement do?", WITH, llm=backend) == (
        "What does the pass statement do?"
    )
    rewritten = standalone_query("Can it be nested?", WITH, llm=backend)
    assert rewritten.strip() and "\n" not in rewritten and rewritten != "Can it be nested?"
