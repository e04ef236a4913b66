"""The ``ember`` extension: answers from a collection with citations, and the conversations it stores."""

from __future__ import annotations

import openai
import pytest

QUESTION = [{"role": "user", "content": "When does the Corrowdale night train leave?"}]


def _rag(openai_client, model_id, **ember):  # noqa: ANN202
    return openai_client.chat.completions.create(
        model=model_id,
        messages=QUESTION,
        max_tokens=40,
        extra_body={"ember": {"collection": "notes", **ember}},
    )


def test_rag_answer_cites_the_right_document(openai_client, model_id):
    response = _rag(openai_client, model_id)
    extension = response.model_extra["ember"]
    citations = extension["citations"]
    assert citations, response
    assert "Trains" in [c["title"] for c in citations]
    assert {"n", "chunk_id", "document_id", "title", "location", "quote"} <= set(citations[0])
    assert response.choices[0].message.content and response.usage.completion_tokens > 0
    assert extension["conversation_id"] >= 1


def test_rag_stream_carries_tokens_then_citations(openai_client, model_id):
    chunks = list(
        openai_client.chat.completions.create(
            model=model_id,
            messages=QUESTION,
            max_tokens=40,
            stream=True,
            extra_body={"ember": {"collection": "notes"}},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    final = chunks[-1]
    assert final.choices[0].finish_reason == "stop"
    assert "Trains" in [c["title"] for c in final.model_extra["ember"]["citations"]]


def test_conversations_list_get_delete(openai_client, model_id, admin):
    conversation_id = _rag(openai_client, model_id).model_extra["ember"]["conversation_id"]
    listed = admin.get("/v1/conversations", params={"collection": "notes"}).json()["data"]
    assert conversation_id in [c["id"] for c in listed]
    conversation = admin.get(f"/v1/conversations/{conversation_id}").json()
    roles = [m["role"] for m in conversation["messages"]]
    assert roles == ["user", "assistant"] and conversation["messages"][1]["citations"]
    assert admin.delete(f"/v1/conversations/{conversation_id}").json()["deleted"] is True
    assert admin.get(f"/v1/conversations/{conversation_id}").status_code == 404


def test_rag_on_a_missing_collection_is_404(openai_client, model_id):
    with pytest.raises(openai.NotFoundError):
        openai_client.chat.completions.create(
            model=model_id, messages=QUESTION, max_tokens=8, extra_body={"ember": {"collection": "nope"}}
        )
