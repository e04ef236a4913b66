from ember.llm.inference.tool_calls import HERMES


def test_well_formed_calls_are_parsed_and_removed_from_text():
    text = 'Let me look.\n<tool_call>{"name": "search", "arguments": {"query": "ember"}}</tool_call>\n'
    text += '<tool_call>{"name": "calc", "arguments": "{\\"x\\": 2}"}</tool_call>'
    parsed = HERMES.parse(text)
    assert parsed.text == "Let me look."
    assert [(c.name, c.arguments, c.id) for c in parsed.tool_calls] == [
        ("search", {"query": "ember"}, "call_0"),
        ("calc", {"x": 2}, "call_1"),
    ]
    assert parsed.malformed == []


def test_malformed_calls_are_reported_never_raised():
    cases = {
        "<tool_call>{not json}</tool_call>": "not valid JSON",
        '<tool_call>{"arguments": {}}</tool_call>': '"name"',
        '<tool_call>["search"]</tool_call>': '"name"',
        '<tool_call>{"name": "s", "arguments": [1]}</tool_call>': "JSON object",
        '<tool_call>{"name": "s", "arguments": "{oops"}</tool_call>': "string that is not valid JSON",
        'ok <tool_call>{"name": "search"': "without a closing",
    }
    for text, error in cases.items():
        parsed = HERMES.parse(text)
        assert parsed.tool_calls == [], text
        assert len(parsed.malformed) == 1 and error in parsed.malformed[0].error, text
    assert HERMES.parse('ok <tool_call>{"name": "search"').text == "ok"


def test_plain_text_passes_through():
    parsed = HERMES.parse("  The answer is 4.  ")
    assert (parsed.text, parsed.tool_calls, parsed.malformed) == ("The answer is 4.", [], [])
