"""Constrained tool-call decoding on the real SmolLM2, greedy: calls come out well-formed."""

from __future__ import annotations

import pytest

from ember.agents.backends import LocalBackend
from ember.agents.tools import SCHEMAS
from ember.llm.inference.constrained_tool_calls import tool_call_constraint

CHAT = [{"role": "user", "content": "Hello! How are you today?"}]  # nothing here asks for a tool


@pytest.fixture(scope="module")
def backend(facts_service) -> LocalBackend:
    return LocalBackend(facts_service.scheduler)


def test_the_model_calls_no_tool_by_itself(backend):
    assert backend.chat(CHAT, SCHEMAS, max_tokens=24).tool_calls == []


@pytest.mark.parametrize("schema", SCHEMAS, ids=lambda s: s["function"]["name"])
def test_a_forced_call_parses_for_every_tool_schema(backend, schema):
    constraint = backend.tool_call_constraint([schema], force_open=True)
    result = backend.chat(CHAT, SCHEMAS, max_tokens=80, logits_processor=constraint)
    assert result.malformed_tool_calls == [] and len(result.tool_calls) == 1, result
    call, parameters = result.tool_calls[0], schema["function"]["parameters"]
    assert call.name == schema["function"]["name"]
    assert set(parameters.get("required", [])) <= set(call.arguments) <= set(parameters["properties"])
    for name, value in call.arguments.items():
        wanted = {"string": str, "integer": int}[parameters["properties"][name].get("type", "string")]
        assert isinstance(value, wanted), call
    assert result.finish_reason == "tool_calls"


def test_a_call_the_model_opens_itself_is_held_to_the_schemas(backend):
    """Once the opening marker is out, only a call to a known tool with its own properties can follow."""
    fmt, tokenizer = backend.tool_call_format, backend.model.engine.tokenizer
    constraint = tool_call_constraint(tokenizer, SCHEMAS, fmt)
    prefix = tokenizer.encode("Let me look. " + fmt.call_open)
    grammar = constraint.grammar
    state = grammar.free()
    for token_id in prefix:
        state = grammar.advance(state, token_id)
    allowed = grammar.mask(state)
    assert allowed is not None and allowed.sum() >= 1
    assert all(tokenizer.decode([i]).startswith("{") for i in allowed.nonzero().flatten().tolist())
    for token_id in tokenizer.encode('{"name": "search", "arguments": {"query": "bridge"}}'):
        assert grammar.mask(state)[token_id], tokenizer.decode([token_id])
        state = grammar.advance(state, token_id)
    for bad in ('{"name": "shell"', '{"name": "search", "arguments": {"k"'):
        state = grammar.opened()
        ids = tokenizer.encode(bad[len('{"name": "') - 1 :])
        assert grammar.advance(grammar.free(), tokenizer.encode(fmt.call_open)[-1]) is not None
        texts = [grammar.strings[i] for i in ids]
        assert grammar._run(grammar.opened(), "".join(texts)[1:]) is None, bad
