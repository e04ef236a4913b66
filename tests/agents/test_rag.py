"""The RAG graph end to end: real SmolLM2, real hybrid retrieval over a small ingested collection."""

from __future__ import annotations

from ember.agents.rag import RagConfig, RagGraph
from ember.agents.relevance import RelevanceThreshold
from ember.agents.types import I_DONT_KNOW
from tests.agents.conftest import COLLECTION


def test_answer_cites_retrieved_passages_that_all_resolve(local_llm, facts_search, facts_service):
    graph = RagGraph(local_llm, facts_search, RagConfig(k=3, max_tokens=40))
    events = list(graph.stream("How long is the Kelmora Bridge?"))
    answer = events[-1].answer
    assert [e.kind for e in events][-2:] == ["citations", "done"]
    assert any(e.kind == "token" for e in events)
    assert answer.citations, answer
    chunk_ids = {h.chunk_id for h in facts_search("How long is the Kelmora Bridge?", 3)}
    assert set(answer.prompt_chunk_ids) <= chunk_ids and answer.prompt_chunk_ids
    shown = dict(zip(answer.prompt_chunk_ids, answer.prompt_document_ids, strict=True))
    for citation in answer.citations:
        assert citation.chunk_id in chunk_ids
        assert shown[citation.chunk_id] == citation.document_id
        assert citation.title == "Kelmora Bridge"
        assert citation.quote in facts_service.search("Kelmora", ["facts"], k=1, mode="bm25").hits[0].text
    assert "invalid_citations" not in answer.flags
    assert answer.timings_ms["first_token"] <= answer.timings_ms["generate"]
    assert answer.usage["completion_tokens"] > 0


def test_unanswerable_question_gets_i_dont_know_without_calling_the_model(local_llm, facts_search):
    graph = RagGraph(local_llm, facts_search, RagConfig(k=3, max_tokens=40))
    answer = graph.run("What is the boiling point of liquid nitrogen in Kelvin?")
    assert answer.text == I_DONT_KNOW
    assert answer.flags == ["no_relevant_passages"]
    assert answer.citations == [] and answer.usage["completion_tokens"] == 0


def test_threshold_above_every_score_refuses_and_below_answers(local_llm, facts_search):
    question = "How many astronomers work at the Tarn Observatory?"
    refusing = RagGraph(local_llm, facts_search, RagConfig(k=3, threshold=RelevanceThreshold(min_dense=1.01)))
    assert refusing.run(question).text == I_DONT_KNOW
    top = facts_search(question, 1)[0]
    assert top.title == "Tarn Observatory" and top.stages["dense"].score > RelevanceThreshold().min_dense


def test_passage_budget_is_capped_by_the_context_window(local_llm, facts_search, facts_service):
    from ember.agents.backends import LocalBackend
    from ember.agents.chat_model import EmberChatModel

    small = LocalBackend(facts_service.scheduler)
    small.context_window = 400
    graph = RagGraph(
        EmberChatModel(backend=small), facts_search, RagConfig(context_tokens=1024, max_tokens=100)
    )
    state = {"question": "How long is the Kelmora Bridge?", "history": []}
    budget = graph.passage_budget(state)
    assert 0 < budget < 400 - 100
    assert RagGraph(local_llm, facts_search, RagConfig(context_tokens=1024)).passage_budget(state) == 1024


def test_the_passage_budget_grows_with_the_context_window_less_the_answer(facts_service, facts_search):
    from ember.agents.backends import LocalBackend
    from ember.agents.chat_model import EmberChatModel

    state = {"question": "How long is the Kelmora Bridge?", "history": []}
    budgets = []
    for window in (1024, 2048, 8192):
        backend = LocalBackend(facts_service.scheduler)
        backend.context_window = window
        graph = RagGraph(
            EmberChatModel(backend=backend), facts_search, RagConfig(context_tokens=None, max_tokens=200)
        )
        budgets.append(graph.passage_budget(state))
    assert budgets[1] - budgets[0] == 1024 and budgets[2] - budgets[1] == 6144
    longer = RagGraph(
        EmberChatModel(backend=backend), facts_search, RagConfig(context_tokens=None, max_tokens=500)
    )
    assert longer.passage_budget(state) == budgets[2] - 300
    capped = RagGraph(EmberChatModel(backend=backend), facts_search, RagConfig())  # the default cap
    assert capped.passage_budget(state) == RagConfig().context_tokens < budgets[2]


def test_the_grade_keeps_a_gold_hit_only_bm25_found(facts_service):
    """With the dense stage cut to one candidate (a large collection's depth cut, in small), the chunk
    holding "412" is found by BM25 alone: no dense score. The search passes on the dense hit, and the
    grade keeps the BM25-only gold hit, which the old rule (a dense score or nothing) dropped."""
    config = facts_service.retriever.config
    depth, config.depth = config.depth, 1
    try:
        hits = facts_service.search("pear 412", [COLLECTION], k=3, mode="hybrid").hits
    finally:
        config.depth = depth
    gold = next(h for h in hits if h.title == "Kelmora Bridge")
    assert "dense" not in gold.stages and gold.stages["bm25"].rank == 1
    assert gold in RelevanceThreshold().grade(hits)


def test_a_focused_prompt_shows_the_model_only_the_sentence_closest_to_the_question(local_llm, facts_search):
    graph = RagGraph(local_llm, facts_search, RagConfig(k=3, max_tokens=40, focus_sentences=1))
    answer = graph.run("How many meters long is the Kelmora Bridge?")
    [shown] = answer.prompt_chunk_ids
    assert shown == facts_search("Kelmora Bridge", 1)[0].chunk_id
    assert answer.citations, answer
    for citation in answer.citations:  # quotes come from what the prompt showed: the one sentence
        assert citation.quote == "The Kelmora Bridge is 412 meters long."
