"""Conversations in SQL (SQLite and PostgreSQL): create, append, read back, list, delete."""

from __future__ import annotations

import pytest

from ember.agents.types import Citation, Step
from ember.platform.conversations import ConversationStore
from ember.platform.errors import InvalidInputError, NotFoundError


@pytest.fixture
def store(service, tmp_path) -> ConversationStore:
    for name in ("alpha", "beta"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "note.md").write_text(f"# {name}\n\nA short note about {name}.\n", encoding="utf-8")
        service.ingest(str(folder), name)
    return ConversationStore(service.db)


def test_messages_round_trip_with_citations_steps_and_metadata(store, service):
    conversation = store.start(service.collection_id("alpha"), "How long is the bridge? " * 10, "rag")
    store.add(conversation, "user", "How long is the bridge?", rewritten_query="How long is the bridge?")
    citation = Citation(1, 7, 2, "Bridge", "", "412 m")
    step = Step("", "search", {"query": "bridge"}, "…", 3.5)
    answer_id = store.add(
        conversation, "assistant", "412 meters [1].", citations=[citation], steps=[step], meta={"flags": []}
    )
    record = store.get(conversation)
    assert record.title == ("How long is the bridge? " * 10)[:80]
    assert record.collection == "alpha" and record.mode == "rag" and record.message_count == 2
    user, assistant = record.messages
    assert (user.role, user.rewritten_query) == ("user", "How long is the bridge?")
    assert assistant.id == answer_id
    assert (
        assistant.citations == [citation]
        and assistant.steps == [step]
        and assistant.metadata == {"flags": []}
    )


def test_last_query_and_recent_turns(store, service):
    conversation = store.start(service.collection_id("alpha"), "first", "rag")
    assert store.last_query(conversation) is None
    store.add(conversation, "user", "first question", rewritten_query="first question")
    store.add(conversation, "assistant", "first answer")
    store.add(conversation, "user", "and it?", rewritten_query="first question and it?")
    store.add(conversation, "assistant", "second answer")
    assert store.last_query(conversation) == "first question and it?"
    assert [m.content for m in store.recent(conversation, 1)] == ["and it?", "second answer"]
    assert len(store.recent(conversation, 5)) == 4


def test_list_filters_by_collection_newest_first_and_delete_cascades(store, service):
    a = store.start(service.collection_id("alpha"), "a", "rag")
    b = store.start(service.collection_id("beta"), "b", "agent")
    store.add(a, "user", "newer activity")
    assert [c.id for c in store.list()] == [a, b]
    assert [c.id for c in store.list("beta")] == [b]
    assert store.list("beta")[0].mode == "agent"
    store.delete(a)
    with pytest.raises(NotFoundError, match=f"conversation {a} does not exist"):
        store.get(a)
    assert [c.id for c in service.list_conversations()] == [b]
    service.delete_collection("beta")  # the conversation outlives its collection
    assert service.get_conversation(b).collection is None


def test_bad_ids_and_collections_are_clear_errors(store, service):
    with pytest.raises(NotFoundError, match="collection 'nope' does not exist"):
        service.collection_id("nope")
    with pytest.raises(InvalidInputError, match="must be an integer"):
        store.get("3")
    with pytest.raises(NotFoundError):
        store.add(12345, "user", "hello")
