"""One tool-call format per chat template: what a template renders for an assistant's calls parses back to
the same calls, and the streaming filter shows exactly the text the parser keeps."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ember.llm.inference.tool_calls import (
    HERMES,
    NATIVE,
    ToolCallFormat,
    ToolMarkupFilter,
    fit_to_template,
    tool_call_format,
)
from ember.llm.tokenizer import Tokenizer
from tests.llm.test_tokenizer_data import multilingual_text

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
CALLS = [
    {"id": "a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Zürich"}'}},
    {"id": "b", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "東京"}}},
]
CONVERSATION = [
    {"role": "system", "content": "You are brief."},
    {"role": "user", "content": "Weather in Zürich and Tokyo?"},
    {"role": "assistant", "content": "Let me check both.", "tool_calls": CALLS},
    {"role": "tool", "tool_call_id": "a", "content": "Sunny, 24 C"},
    {"role": "tool", "tool_call_id": "b", "content": "Rain, 18 C"},
    {"role": "assistant", "content": "Zürich: sunny, 24 C. Tokyo: rain, 18 C."},
]


@pytest.fixture(scope="module")
def native_tokenizer() -> Tokenizer:
    """A tokenizer with Ember's special tokens and no jinja template: it renders with Ember's own."""
    return Tokenizer.train([multilingual_text(100)], 700)


@pytest.fixture(params=["smollm2_tokenizer", "native_tokenizer"])
def tokenizer(request) -> Tokenizer:
    return request.getfixturevalue(request.param)


def test_the_format_follows_the_template(smollm2_tokenizer, native_tokenizer):
    assert tool_call_format(smollm2_tokenizer) is HERMES
    assert tool_call_format(native_tokenizer) is NATIVE


def assistant_turns(tok: Tokenizer, ids: list[int], mask: list[int]) -> list[str]:
    """The text of each assistant turn (the runs of trained tokens), as the engine would produce it."""
    turns, previous = [], 0
    for token_id, trained in zip(ids, mask, strict=True):
        if trained and not previous:
            turns.append([])
        if trained:
            turns[-1].append(token_id)
        previous = trained
    return [generated_text(tok, turn) for turn in turns]


def generated_text(tok: Tokenizer, ids: list[int]) -> str:
    """Decoded token by token, as the engine streams, up to the end-of-turn token where it stops."""
    decoder, text = tok.stream_decoder(), ""
    for token_id in ids:
        if token_id in tok.eos_ids:
            break
        text += decoder.push(token_id)
    return text + decoder.flush()


def test_calls_rendered_by_the_template_parse_back_to_the_same_calls(tokenizer):
    fmt = tool_call_format(tokenizer)
    messages, tools = fit_to_template(tokenizer, CONVERSATION, [WEATHER])
    ids, mask = tokenizer.render_chat(messages, tools, add_generation_prompt=False)
    first, second = assistant_turns(tokenizer, ids, mask)

    parsed = fmt.parse(first)
    assert parsed.text == "Let me check both." and parsed.malformed == []
    assert [(c.name, c.arguments) for c in parsed.tool_calls] == [
        ("get_weather", {"city": "Zürich"}),
        ("get_weather", {"city": "東京"}),
    ]
    answer = fmt.parse(second)
    assert (answer.text, answer.tool_calls) == (CONVERSATION[-1]["content"], [])
    prompt = tokenizer.decode(ids)
    assert "get_weather" in prompt and "Sunny, 24 C" in prompt and "Rain, 18 C" in prompt
    assert fmt.call_open in prompt and fmt.result_open in prompt


def test_instructions_show_an_example_call_in_the_format_itself():
    for fmt in (HERMES, NATIVE):
        instructions = fmt.instructions([WEATHER])
        assert '"name": "get_weather"' in instructions
        example = instructions[instructions.index(fmt.call_open) :]
        assert [c.name for c in fmt.parse(example).tool_calls] == ["tool_name"]
    assert NATIVE.call_open not in HERMES.instructions([WEATHER])


def test_templates_that_render_tools_keep_them(native_tokenizer, smollm2_tokenizer):
    messages, tools = fit_to_template(native_tokenizer, CONVERSATION, [WEATHER])
    assert (messages, tools) == (CONVERSATION, [WEATHER])
    messages, tools = fit_to_template(smollm2_tokenizer, CONVERSATION, [WEATHER])
    assert tools is None and "get_weather" in messages[0]["content"]
    assert messages[2]["content"].startswith("Let me check both.<tool_call>")


def stream(fmt: ToolCallFormat, chunks: list[str]) -> str:
    markup = ToolMarkupFilter(fmt)
    return "".join(markup.push(chunk) for chunk in chunks) + markup.finish()


def splits(text: str, cuts: list[int]) -> list[str]:
    points = sorted({0, len(text), *(c % (len(text) + 1) for c in cuts)})
    return [text[a:b] for a, b in zip(points, points[1:], strict=False)]


def outputs(fmt: ToolCallFormat) -> list[str]:
    call = fmt.render_calls([{"name": "search", "arguments": {"query": "a < b"}}])
    other = (NATIVE if fmt is HERMES else HERMES).render_calls([{"name": "x", "arguments": {}}])
    return [
        f"  Let me look.\n{call}\n{call}  ",
        f"{call}",
        f"text <{fmt.call_open[1:4]} not a call < {other} end",
        f"before {call[:-3]}",  # unclosed
        f"a{fmt.call_open}{{broken{fmt.call_close} b \n",
        f"{fmt.call_open[:-1]}",  # a marker that never completes is text
        f"x{fmt.call_close}y{fmt.call_open}",
        "\n \t ",
        "",
    ]


@pytest.mark.parametrize("fmt", [HERMES, NATIVE], ids=["hermes", "native"])
def test_streaming_shows_what_the_parser_keeps_however_the_text_is_split(fmt):
    for text in outputs(fmt):
        expected = fmt.parse(text).text
        assert stream(fmt, list(text)) == expected, text
        assert stream(fmt, [text]) == expected, text
        for size in (2, 3, 5, 7):
            assert stream(fmt, [text[i : i + size] for i in range(0, len(text), size)]) == expected, text


def markup_soup(fmt: ToolCallFormat) -> st.SearchStrategy[str]:
    pieces = [fmt.call_open, fmt.call_close, fmt.call_open[:3], fmt.call_close[:4], "{", "}", "[", "]"]
    pieces += ['"name"', '"arguments"', '"s"', ":", ",", " ", "\n", "x", "é", '"{"']
    return st.lists(st.sampled_from(pieces) | st.text(max_size=3), max_size=30).map("".join)


@pytest.mark.parametrize("fmt", [HERMES, NATIVE], ids=["hermes", "native"])
@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_any_output_parses_without_raising_and_streams_alike(fmt, data):
    text = data.draw(markup_soup(fmt))
    parsed = fmt.parse(text)
    assert bool(parsed.tool_calls or parsed.malformed) == (fmt.call_open in text)
    for call in parsed.tool_calls:
        assert isinstance(call.name, str) and isinstance(call.arguments, dict)
        json.dumps(call.arguments)
    cuts = data.draw(st.lists(st.integers(min_value=0, max_value=1000), max_size=8))
    assert stream(fmt, splits(text, cuts)) == parsed.text
