"""The README's chat example over real Python reference topics: the second question is searched as asked
and retrieves the pass statement's passage, while a real follow-up is searched with its subject."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from pydoc_data.topics import topics

import pytest

from ember.platform.index_sync import IndexSync
from ember.platform.service import EmberService
from ember.platform.settings import Settings

# The statements a reader of the with topic might ask about next, and some neighbours to tell apart.
TOPICS = ("with", "context-managers", "pass", "while", "for", "try", "if", "raise", "break", "continue")
WITH, PASS = "How does the with statement work?", "What does the pass statement do?"


@pytest.fixture(scope="module")
def reference_service(tmp_path_factory, smollm2_models_dir: Path) -> Iterator[EmberService]:
    root = tmp_path_factory.mktemp("reference")
    docs = root / "docs"
    docs.mkdir()
    for name in TOPICS:
        (docs / f"{name}.txt").write_text(topics[name], encoding="utf-8")
    settings = Settings(
        home=root / "home",
        database_url=f"sqlite:///{root / 'ember.db'}",
        llm_model=str(smollm2_models_dir / "smollm2-135m-instruct"),
        reranker="",
    )
    service = EmberService(settings)
    service.ingest_hook = IndexSync(service.db, service.index_store)
    service.ingest(str(docs), "reference")
    yield service
    service.close()


def test_the_second_question_of_the_readme_chat_retrieves_the_pass_passage(reference_service):
    first = reference_service.ask(WITH, "reference", max_tokens=1)
    second = reference_service.ask(PASS, "reference", conversation_id=first.conversation_id, max_tokens=1)
    assert second.query == PASS
    assert reference_service.get_conversation(first.conversation_id).messages[2].rewritten_query == PASS
    hits = reference_service.search(second.query, ["reference"], k=3).hits
    assert hits[0].title == "pass"


def test_a_follow_up_that_refers_back_is_searched_with_its_subject(reference_service):
    first = reference_service.ask(WITH, "reference", max_tokens=1)
    follow = reference_service.ask(
        "What methods does it call on the object?",
        "reference",
        conversation_id=first.conversation_id,
        max_tokens=1,
    )
    assert follow.query == f"{WITH} What methods does it call on the object?"
    titles = [h.title for h in reference_service.search(follow.query, ["reference"], k=3).hits]
    assert {"with", "context-managers"} & set(titles)
