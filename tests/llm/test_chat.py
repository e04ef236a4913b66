"""ChatModel on the real SmolLM2-Instruct weights through its own chat template."""

from ember.llm.chat import ChatModel
from ember.llm.engine import Engine

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
    assert "".join(d.text for d in deltas).strip() == deltas[-1].result.text
    assert deltas[-1].result.text == model.chat(MESSAGES, max_tokens=40).text
