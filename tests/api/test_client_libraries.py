"""LangChain and LlamaIndex against a real server, configured as the README shows: only base_url and key."""

from __future__ import annotations

import numpy as np
import pytest

QUESTION = "What is the capital of France?"
RAG_QUESTION = "When does the Corrowdale night train leave?"
EMBEDDING_MODEL = "all-MiniLM-L6-v2"
TEXTS = ["hybrid search", "BM25 and FAISS"]


@pytest.fixture(scope="module")
def v1(base_url) -> str:
    return f"{base_url}/v1"


def latest_answer(admin) -> dict:  # noqa: ANN001
    """The newest stored conversation of 'notes': the ember extension stores every answer it gives."""
    newest = admin.get("/v1/conversations", params={"collection": "notes"}).json()["data"][0]
    return admin.get(f"/v1/conversations/{newest['id']}").json()["messages"][-1]


def test_langchain_chat_plain_and_streaming(v1, keys, model_id):
    from langchain_openai import ChatOpenAI

    llm = ChatOpenAI(model=model_id, base_url=v1, api_key=keys["read"], max_tokens=24)
    reply = llm.invoke(QUESTION)
    assert "Paris" in reply.content and reply.usage_metadata["output_tokens"] > 0
    streamed = "".join(chunk.content for chunk in llm.stream(QUESTION))
    assert streamed == reply.content


def test_langchain_chat_with_the_ember_extension(v1, keys, model_id, admin):
    from langchain_openai import ChatOpenAI

    rag = ChatOpenAI(
        model=model_id,
        base_url=v1,
        api_key=keys["read"],
        max_tokens=40,
        extra_body={"ember": {"collection": "notes"}},
    )
    reply = rag.invoke(RAG_QUESTION)
    stored = latest_answer(admin)
    assert "23:40" in reply.content and stored["content"] == reply.content
    assert "Trains" in [c["title"] for c in stored["citations"]]

    streamed = "".join(chunk.content for chunk in rag.stream(RAG_QUESTION))
    # the stream carries the tokens as generated; the stored answer has its citations repaired
    stored_again = latest_answer(admin)
    assert "23:40" in streamed and stored_again["id"] != stored["id"]
    assert "Trains" in [c["title"] for c in stored_again["citations"]]


def test_langchain_embeddings(v1, keys, api_service):
    from langchain_openai import OpenAIEmbeddings

    # Without this LangChain sends tiktoken token ids (OpenAI's own models only), fetching tiktoken's
    # vocabulary from the internet first.
    embeddings = OpenAIEmbeddings(
        model=EMBEDDING_MODEL, base_url=v1, api_key=keys["read"], check_embedding_ctx_length=False
    )
    expected = np.asarray(api_service.embed(TEXTS))
    assert np.allclose(embeddings.embed_documents(TEXTS), expected, atol=1e-5)
    assert np.allclose(embeddings.embed_query(TEXTS[0]), expected[0], atol=1e-5)


def test_llamaindex_llm_plain_and_streaming(v1, keys, model_id):
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    # temperature 0: LlamaIndex samples at 0.1 by default, too loose for a 135M model to stay on topic
    llm = OpenAILike(
        model=model_id, api_base=v1, api_key=keys["read"], is_chat_model=True, max_tokens=24, temperature=0
    )
    assert "Paris" in llm.complete(QUESTION).text
    messages = [ChatMessage(role="user", content=QUESTION)]
    reply = llm.chat(messages).message.content
    assert "Paris" in reply
    assert "".join(part.delta or "" for part in llm.stream_chat(messages)) == reply


def test_llamaindex_llm_with_the_ember_extension(v1, keys, model_id):
    from llama_index.core.llms import ChatMessage
    from llama_index.llms.openai_like import OpenAILike

    rag = OpenAILike(
        model=model_id,
        api_base=v1,
        api_key=keys["read"],
        is_chat_model=True,
        max_tokens=40,
        temperature=0,
        additional_kwargs={"extra_body": {"ember": {"collection": "notes"}}},
    )
    response = rag.chat([ChatMessage(role="user", content=RAG_QUESTION)])
    extension = response.raw.model_extra["ember"]  # the OpenAI SDK's response, extension included
    assert response.message.content and extension["conversation_id"] >= 1
    assert "Trains" in [c["title"] for c in extension["citations"]]


def test_llamaindex_embeddings(v1, keys, api_service):
    from llama_index.embeddings.openai_like import OpenAILikeEmbedding

    embedding = OpenAILikeEmbedding(model_name=EMBEDDING_MODEL, api_base=v1, api_key=keys["read"])
    expected = np.asarray(api_service.embed(TEXTS))
    assert np.allclose(embedding.get_text_embedding_batch(TEXTS), expected, atol=1e-5)
    assert np.allclose(embedding.get_query_embedding(TEXTS[0]), expected[0], atol=1e-5)
