"""Constrained tool-call decoding on the real SmolLM2, greedy: calls come out well-formed."""

from __future__ import annotations

import re

import pytest

from ember.agents.backends import LocalBackend
from ember.agents.calculator import EXPRESSION_PATTERN
from ember.agents.tools import SCHEMAS
from ember.llm.inference.constrained_tool_calls import pattern_machine, tool_call_constraint

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
        spec = parameters["properties"][name]
        assert isinstance(value, {"string": str, "integer": int}[spec.get("type", "string")]), call
        assert "pattern" not in spec or re.fullmatch(spec["pattern"], value), call
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


def test_a_calculator_expression_holds_only_what_its_pattern_allows(backend):
    """Asked in words, the model still writes digits, operators and the calculator's names."""
    calculator = [s for s in SCHEMAS if s["function"]["name"] == "calculator"]
    constraint = backend.tool_call_constraint(calculator, force_open=True)
    ask = [
        {
            "role": "user",
            "content": "Use the calculator: what is twelve times the number of letters in 'ember'?",
        }
    ]
    result = backend.chat(ask, SCHEMAS, max_tokens=80, logits_processor=constraint)
    assert len(result.tool_calls) == 1, result
    expression = result.tool_calls[0].arguments["expression"]
    assert expression and re.fullmatch(EXPRESSION_PATTERN, expression), expression


def test_inside_a_patterned_string_only_matching_tokens_are_allowed(backend):
    tokenizer = backend.model.engine.tokenizer
    grammar = tool_call_constraint(tokenizer, SCHEMAS, backend.tool_call_format).grammar
    state = grammar._run(grammar.opened(), '{"name": "calculator", "arguments": {"expression": "')
    assert state[0] == "pat"

    def allowed(state, text: str) -> bool:  # the vocabulary's token spelled ``text``
        return bool(grammar.mask(state)[grammar.strings.index(text)])

    assert allowed(state, "1") and allowed(state, "sqrt") and allowed(state, "(")
    assert not allowed(state, "the") and not allowed(state, '"')  # words, and an empty expression
    after = grammar._run(state, "2 * 4.5")
    assert allowed(after, " +") and allowed(after, '"') and not allowed(after, " times")
    assert grammar._run(after, '"}')[0] == "lit"  # the call closes


@pytest.mark.parametrize("pattern", ["(ab", "a{2,1}", "(?<=a)b"])
def test_a_pattern_that_cannot_be_enforced_is_a_clear_error(pattern):
    with pytest.raises(ValueError, match=re.escape(f"tool schema pattern {pattern!r} cannot be enforced")):
        pattern_machine(pattern)


def test_a_json_schema_pattern_is_unanchored_unless_it_says_so():
    assert pattern_machine("ab").accepts("xxaby") and not pattern_machine("ab").accepts("ba")
    assert pattern_machine("^ab$").accepts("ab") and not pattern_machine("^ab$").accepts("xab")
    assert pattern_machine("^ab").accepts("aby") and not pattern_machine("^ab").accepts("yab")
