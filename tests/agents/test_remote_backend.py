"""The OpenAI-compatible backend against a real HTTP server (backed by the real local model)."""

from __future__ import annotations

import pytest

from ember.agents.backends import OpenAICompatibleBackend, RemoteError, _tool_calls
from ember.agents.chat_model import EmberChatModel
from ember.agents.rag import RagConfig, RagGraph
from tests.agents.openai_server import make_app, serve

MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def base_url(local_llm):  # noqa: ANN201
    with serve(make_app(local_llm.backend, "secret")) as url:
        yield url


def test_chat_and_stream_match_the_local_model(base_url, local_llm):
    remote = OpenAICompatibleBackend(base_url, "smollm2", api_key="secret")
    local = local_llm.backend.chat(MESSAGES, max_tokens=16)
    result = remote.chat(MESSAGES, max_tokens=16)
    assert result.text == local.text and "Paris" in result.text
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (
        local.usage.prompt_tokens,
        local.usage.completion_tokens,
    )
    deltas = list(remote.stream(MESSAGES, max_tokens=16))
    assert "".join(d.text for d in deltas[:-1]).strip() == deltas[-1].result.text.strip() == local.text
    assert deltas[-1].result.usage.completion_tokens == local.usage.completion_tokens


def test_wrong_api_key_is_a_clear_error(base_url):
    with pytest.raises(RemoteError, match="answered 401"):
        OpenAICompatibleBackend(base_url, "smollm2", api_key="wrong").chat(MESSAGES, max_tokens=4)
    with pytest.raises(ValueError, match="must start with http"):
        OpenAICompatibleBackend("localhost:8000", "smollm2")


@pytest.mark.slow
def test_rag_graph_runs_over_the_remote_backend(base_url, facts_search):
    llm = EmberChatModel(backend=OpenAICompatibleBackend(base_url, "smollm2", api_key="secret"))
    answer = RagGraph(llm, facts_search, RagConfig(k=3, max_tokens=32)).run(
        "What does the Glass Orchard grow?"
    )
    retrieved = {h.chunk_id for h in facts_search("What does the Glass Orchard grow?", 3)}
    assert answer.citations and {c.chunk_id for c in answer.citations} <= retrieved
    assert answer.usage["completion_tokens"] > 0


def test_remote_tool_calls_are_parsed_and_bad_ones_reported():
    calls, malformed = _tool_calls(
        [
            {"id": "a", "function": {"name": "calculator", "arguments": '{"expression": "2 + 2"}'}},
            {"id": "b", "function": {"name": "search", "arguments": '{"query": '}},
            {"id": "c", "function": {"name": "", "arguments": "{}"}},
        ]
    )
    assert [(c.id, c.name, c.arguments) for c in calls] == [("a", "calculator", {"expression": "2 + 2"})]
    assert [m.error.split(":")[0] for m in malformed] == [
        "arguments are not valid JSON",
        "a tool call needs a name and object arguments",
    ]
