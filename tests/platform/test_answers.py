"""EmberService.ask / ask_stream / conversations end to end: real SmolLM2, real indexes, SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import event, select

from ember.agents.types import I_DONT_KNOW, Citation
from ember.platform.chunks import read_chunks
from ember.platform.errors import InvalidInputError, NotFoundError
from ember.platform.tables import Chunk, Document
from tests.agents.conftest import COLLECTION, facts_service  # noqa: F401 - the shared session fixture


def test_ask_returns_resolving_citations_and_stores_the_turn(facts_service):  # noqa: F811
    answer = facts_service.ask("When was the Kelmora Bridge opened?", COLLECTION, max_tokens=40)
    assert answer.path == "rag" and answer.citations
    with facts_service.db.session() as session:
        for citation in answer.citations:
            assert isinstance(citation, Citation)
            chunk = session.get(Chunk, citation.chunk_id)
            assert chunk is not None and citation.quote in chunk.text
            assert session.get(Document, chunk.document_id).title == citation.title
        for chunk_id, document_id in zip(answer.prompt_chunk_ids, answer.prompt_document_ids, strict=True):
            assert session.get(Chunk, chunk_id).document_id == document_id
    assert {c.chunk_id for c in answer.citations} <= set(answer.prompt_chunk_ids)
    conversation = facts_service.get_conversation(answer.conversation_id)
    question, stored = conversation.messages
    assert question.content == "When was the Kelmora Bridge opened?"
    assert stored.id == answer.message_id and stored.content == answer.text
    assert stored.citations == answer.citations and stored.metadata["flags"] == answer.flags
    assert stored.metadata["prompt_chunk_ids"] == answer.prompt_chunk_ids
    assert {"retrieve", "first_token", "generate"} <= set(answer.timings_ms)


def test_the_collection_is_looked_up_once_per_question(facts_service):  # noqa: F811
    lookups = []

    def record(conn, cursor, statement, *args) -> None:  # noqa: ANN001
        # The index's freshness check (one column, per search) is not a lookup of the collection.
        if "collections.name = " in statement and "content_revision" not in statement:
            lookups.append(statement)
        assert "count(" not in statement.lower(), statement

    event.listen(facts_service.db.engine, "before_cursor_execute", record)
    try:
        answer = facts_service.ask("How long is the Kelmora Bridge?", COLLECTION, max_tokens=16)
    finally:
        event.remove(facts_service.db.engine, "before_cursor_execute", record)
    assert answer.message_id > 0
    assert len(lookups) == 1 and lookups[0].startswith("SELECT collections.id")


def test_unanswerable_question_is_i_dont_know_and_stored(facts_service):  # noqa: F811
    answer = facts_service.ask("Who painted the Mona Lisa?", COLLECTION, max_tokens=24)
    assert answer.text == I_DONT_KNOW and answer.citations == []
    assert facts_service.get_conversation(answer.conversation_id).messages[-1].content == I_DONT_KNOW


def test_follow_up_is_rewritten_to_stand_alone_before_retrieval(facts_service):  # noqa: F811
    first = facts_service.ask("How long is the Kelmora Bridge?", COLLECTION, max_tokens=24)
    follow = facts_service.ask(
        "Who opened it?", COLLECTION, conversation_id=first.conversation_id, max_tokens=24
    )
    assert follow.query == "How long is the Kelmora Bridge? Who opened it?"
    assert follow.conversation_id == first.conversation_id
    assert all(c.title == "Kelmora Bridge" for c in follow.citations)
    messages = facts_service.get_conversation(first.conversation_id).messages
    assert [m.role for m in messages] == ["user", "assistant", "user", "assistant"]
    assert messages[2].rewritten_query == follow.query


def test_stream_yields_tokens_then_citations_then_done(facts_service):  # noqa: F811
    events = list(
        facts_service.ask_stream("How wide is the Tarn Observatory mirror?", COLLECTION, max_tokens=24)
    )
    kinds = [e.kind for e in events]
    assert kinds[-2:] == ["citations", "done"] and set(kinds[:-2]) == {"token"}
    assert events[-2].citations is not None and events[-1].answer.message_id > 0


def test_agent_mode_runs_and_records_its_path_and_steps(facts_service):  # noqa: F811
    events = list(
        facts_service.ask_stream(
            "What does a ticket to the Glass Orchard cost?",
            COLLECTION,
            agent=True,
            show_steps=True,
            max_tokens=32,
        )
    )
    answer = events[-1].answer
    assert answer.path in ("agent", "agent_fallback")
    assert answer.prompt_chunk_ids  # the agent's (or its fallback's) passages reached the prompt
    assert len([e for e in events if e.kind == "step"]) == len(answer.steps) <= 6
    stored = facts_service.get_conversation(answer.conversation_id)
    assert stored.mode == "agent" and stored.messages[-1].steps == answer.steps


def test_chunk_reads_return_neighbouring_chunks_and_reject_unknown_ids(facts_service):  # noqa: F811
    with facts_service.db.session() as session:
        chunk_id = session.scalars(select(Chunk.id)).first()
    hits = read_chunks(facts_service.db, "chunk", chunk_id, 1)
    assert chunk_id in [h.chunk_id for h in hits] and hits[0].collection == COLLECTION
    assert facts_service.get_chunk(chunk_id) == next(h for h in hits if h.chunk_id == chunk_id)
    with pytest.raises(NotFoundError, match="chunk 0 does not exist"):
        facts_service.get_chunk(0)
    with pytest.raises(NotFoundError, match="document 0 does not exist"):
        read_chunks(facts_service.db, "document", 0, 1)


def test_bad_input_is_a_clear_error(facts_service):  # noqa: F811
    with pytest.raises(InvalidInputError, match="question must not be empty"):
        facts_service.ask("  ", COLLECTION)
    with pytest.raises(NotFoundError, match="collection 'nope' does not exist"):
        facts_service.ask("Hello?", "nope")
    with pytest.raises(InvalidInputError, match="temperature"):
        facts_service.ask("Hello?", COLLECTION, temperature=-1)
    with pytest.raises(NotFoundError, match="conversation 999999 does not exist"):
        facts_service.ask("Hello?", COLLECTION, conversation_id=999999)


def test_a_grounded_answer_reads_as_many_passages_as_the_setting_says(facts_service, monkeypatch):  # noqa: F811
    question = "How long is the Kelmora Bridge, and how many astronomers work at the Tarn Observatory?"
    read = {}
    for passages in (1, 3):
        monkeypatch.setattr(facts_service.settings, "rag_passages", passages)
        read[passages] = facts_service.ask(question, COLLECTION, max_tokens=8).prompt_chunk_ids
    assert len(read[1]) == 1 and len(read[3]) > 1
    assert read[1][0] in read[3]


def test_the_agent_setting_holds_the_local_models_tool_calls_to_the_schemas(facts_service, monkeypatch):  # noqa: F811
    """Untuned, the model calls no tool; with the setting on, its first turn is a well-formed search."""
    reasons = {}
    for constrained in (False, True):
        monkeypatch.setattr(facts_service.settings, "agent_constrained_tool_calls", constrained)
        answer = facts_service.ask("How long is the Kelmora Bridge?", COLLECTION, agent=True, max_tokens=48)
        reasons[constrained] = answer.fallback_reason
        if constrained:
            assert answer.steps[0].tool == "search" and answer.steps[0].arguments["query"], answer.steps
    assert reasons[False] == "no_tool_call" and reasons[True] != "no_tool_call"


def test_the_focus_setting_keeps_a_grounded_answers_closest_sentence(facts_service, monkeypatch):  # noqa: F811
    question = "How many astronomers does the Tarn Observatory employ?"
    monkeypatch.setattr(facts_service.settings, "rag_focus_sentences", 1)
    answer = facts_service.ask(question, COLLECTION, max_tokens=24)
    [shown] = answer.prompt_chunk_ids
    assert facts_service.get_chunk(shown).title == "Tarn Observatory"
    for citation in answer.citations:  # the one sentence the prompt kept
        assert citation.quote == "The observatory employs 27 astronomers."
    scores = facts_service.sentence_similarity(
        question, ["The observatory employs 27 astronomers.", "Pears."]
    )
    assert scores[0] > 0.5 > scores[1]
