"""Focused passages: the sentences closest to the question, best first, with cuts marked."""

import pytest

from ember.agents.focus import focus_passages, word_scores
from ember.retrieval.types import Hit

BRIDGE = (
    "The Kelmora Bridge crosses the Vell estuary. "
    "It opened to traffic in 1931 after six years of work. "
    "The bridge is 1,240 metres long. "
    "Its towers are painted grey every decade."
)
OBSERVATORY = "The Tarn Observatory sits on a ridge. Forty astronomers work there. The ridge is windy."


def hits() -> list[Hit]:
    return [
        Hit(1, 10, "Kelmora Bridge", "", BRIDGE, 0.9),
        Hit(2, 20, "Tarn Observatory", "", OBSERVATORY, 0.5),
    ]


def test_a_passage_keeps_only_its_best_sentences_and_marks_what_was_cut():
    [bridge] = focus_passages("How long is the Kelmora Bridge in metres?", hits(), 1)
    assert bridge.chunk_id == 1
    assert bridge.text == "… The bridge is 1,240 metres long. …"


def test_sentences_keep_document_order_and_passages_come_in_the_order_of_their_best_sentence():
    question = "How many astronomers are at the Tarn Observatory on the ridge?"
    [observatory] = focus_passages(question, hits(), 3)
    assert observatory.text == OBSERVATORY  # all three sentences kept: nothing marked as cut
    focused = focus_passages(question, hits(), 4)  # the fourth scores 0: the first of the better-ranked hit
    assert [h.chunk_id for h in focused] == [2, 1]
    assert focused[1].text == "The Kelmora Bridge crosses the Vell estuary. …"


def test_kept_sentences_come_best_first_and_every_cut_is_marked():
    question = "When was the Kelmora Bridge opened to traffic, and are its towers painted?"
    [bridge] = focus_passages(question, hits()[:1], 3)
    assert bridge.text == (
        "… It opened to traffic in 1931 after six years of work. … "
        "Its towers are painted grey every decade. … The Kelmora Bridge crosses the Vell estuary. …"
    )


def test_an_extra_scorer_adds_to_word_overlap():
    def likes_towers(question: str, sentences: list[str]) -> list[float]:
        return [5.0 if "towers" in s else 0.0 for s in sentences]

    [bridge] = focus_passages("How long is the Kelmora Bridge?", hits(), 1, likes_towers)
    assert bridge.text == "… Its towers are painted grey every decade."


def test_ties_go_to_the_better_ranked_passage_then_the_earlier_sentence():
    same = [Hit(1, 1, "a", "", "Alpha one. Alpha two.", 0.9), Hit(2, 2, "b", "", "Alpha three.", 0.8)]
    [first] = focus_passages("alpha", same, 1)
    assert (first.chunk_id, first.text) == (1, "Alpha one. …")


def test_word_scores_weigh_rare_question_words_above_common_ones():
    sentences = ["The bridge is long.", "The bridge is grey.", "The bridge spans the estuary."]
    scores = word_scores("How long is the bridge over the estuary?", sentences)
    assert max(scores) == 1.0 and scores[1] < scores[0] and scores[1] < scores[2]
    assert word_scores("Nothing shared?", sentences) == [0.0, 0.0, 0.0]


def test_no_sentence_is_a_clear_error():
    with pytest.raises(ValueError, match="at least one sentence, got 0"):
        focus_passages("How long?", hits(), 0)
