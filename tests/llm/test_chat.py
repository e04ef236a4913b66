"""ChatModel on the real SmolLM2-Instruct weights through its own chat template."""

from ember.llm.inference.chat import ChatModel
from ember.llm.inference.engine import Engine

MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


def test_chat_returns_text_usage_and_stops_at_end_of_turn(smollm2, smollm2_tokenizer):
    model = ChatModel(Engine(smollm2, smollm2_tokenizer))
    result = model.chat(MESSAGES, max_tokens=40)
    assert "Paris" in result.text
    assert result.finish_reason == "stop"
    assert result.tool_calls == [] and result.malformed_tool_calls == []
    prompt_ids, _ = smollm2_tokenizer.render_chat(MESSAGES, add_generation_prompt=True)
    assert result.usage.prompt_tokens == len(prompt_ids)
    assert 0 < result.usage.completion_tokens < 40


def test_stream_yields_the_same_text_as_chat(smollm2, smollm2_tokenizer):
    model = ChatModel(Engine(smollm2, smollm2_tokenizer))
    deltas = list(model.stream(MESSAGES, max_tokens=40))
    assert deltas[-1].result is not None
    assert "".join(d.text for d in deltas) == deltas[-1].result.text
    assert deltas[-1].result.text == model.chat(MESSAGES, max_tokens=40).text


SEARCH_TOOL = {
    "type": "function",
    "function": {
        "name": "search_documents",
        "description": "Search the user's documents.",
        "parameters": {"type": "object", "properties": {"query": {"type": "string"}}, "required": ["query"]},
    },
}


def test_tool_schemas_reach_the_prompt_even_when_the_template_ignores_them(smollm2, smollm2_tokenizer):
    model = ChatModel(Engine(smollm2, smollm2_tokenizer))
    with_tools = smollm2_tokenizer.decode(model.prompt(MESSAGES, [SEARCH_TOOL]))
    without = smollm2_tokenizer.decode(model.prompt(MESSAGES, None))
    assert "search_documents" in with_tools and "<tool_call>" in with_tools
    assert "search_documents" not in without
    assert MESSAGES[0]["content"] in with_tools


def test_chat_with_tools_never_raises_and_accounts_every_call(smollm2, smollm2_tokenizer):
    model = ChatModel(Engine(smollm2, smollm2_tokenizer))
    question = [{"role": "user", "content": "Find my notes about the lighthouse."}]
    result = model.chat(question, tools=[SEARCH_TOOL], max_tokens=60)
    assert result.usage.completion_tokens > 0
    for call in result.tool_calls:
        assert isinstance(call.name, str) and isinstance(call.arguments, dict)
    assert "<tool_call>" not in result.text


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
# SmolLM2-135M calls tools when shown one earlier call; the history holds it as an OpenAI tool_calls field.
EARLIER_CALL = {
    "id": "c0",
    "type": "function",
    "function": {"name": "get_weather", "arguments": '{"city": "Rome"}'},
}
WEATHER_CHAT = [
    {"role": "system", "content": "Answer weather questions by calling get_weather."},
    {"role": "user", "content": "What is the weather in Rome?"},
    {"role": "assistant", "content": "", "tool_calls": [EARLIER_CALL]},
    {"role": "user", "content": "What is the weather in Paris?"},
]


def test_streamed_tool_calls_stay_hidden_and_are_parsed(smollm2, smollm2_tokenizer):
    model = ChatModel(Engine(smollm2, smollm2_tokenizer))
    deltas = list(model.stream(WEATHER_CHAT, tools=[WEATHER_TOOL], max_tokens=40))
    result = deltas[-1].result
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("get_weather", {"city": "Paris"})]
    assert result.finish_reason == "tool_calls"
    assert not any("<tool_call>" in d.text for d in deltas)
    assert "".join(d.text for d in deltas) == result.text
