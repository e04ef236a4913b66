"""The OpenAI Python SDK against a real uvicorn server: chat, streaming, tools, embeddings, models, errors."""

from __future__ import annotations

import base64
import json

import httpx
import numpy as np
import openai
import pytest

QUESTION = [{"role": "user", "content": "What is the capital of France?"}]


def test_models_lists_the_served_model(openai_client, model_id):
    models = openai_client.models.list()
    assert [m.id for m in models.data] == [model_id]
    assert openai_client.models.retrieve(model_id).owned_by == "ember"


def test_chat_completion_answers_with_usage(openai_client, model_id, api_service):
    response = openai_client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=24)
    choice = response.choices[0]
    assert response.object == "chat.completion" and response.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and "Paris" in choice.message.content
    assert choice.finish_reason == "stop"
    prompt_ids, _ = api_service.scheduler.engine.tokenizer.render_chat(QUESTION, add_generation_prompt=True)
    assert response.usage.prompt_tokens == len(prompt_ids)
    assert 0 < response.usage.completion_tokens < 24
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_streaming_gives_the_same_text_and_usage(openai_client, model_id):
    whole = openai_client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=24)
    chunks = list(
        openai_client.chat.completions.create(
            model=model_id,
            messages=QUESTION,
            max_tokens=24,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == whole.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert len({c.id for c in chunks}) == 1


def test_stream_ends_with_done_marker(base_url, keys, model_id):
    body = {"model": model_id, "messages": QUESTION, "max_tokens": 4, "stream": True}
    headers = {"Authorization": f"Bearer {keys['read']}"}
    with httpx.stream("POST", f"{base_url}/v1/chat/completions", json=body, headers=headers, timeout=60) as r:
        lines = [line for line in r.iter_lines() if line]
    assert r.headers["content-type"].startswith("text/event-stream")
    assert lines[-1] == "data: [DONE]"
    assert all(line.startswith("data: ") for line in lines)
    assert json.loads(lines[-2][6:])["choices"][0]["finish_reason"] == "length"


def test_max_tokens_stop_and_seed(openai_client, model_id):
    short = openai_client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=3)
    assert short.choices[0].finish_reason == "length" and short.usage.completion_tokens == 3
    stopped = openai_client.chat.completions.create(
        model=model_id, messages=QUESTION, max_tokens=24, stop=["Paris"]
    )
    assert "Paris" not in stopped.choices[0].message.content and stopped.choices[0].finish_reason == "stop"
    sampled = [
        openai_client.chat.completions.create(
            model=model_id, messages=QUESTION, max_tokens=12, temperature=1.2, top_p=0.9, seed=seed
        )
        .choices[0]
        .message.content
        for seed in (7, 7, 8)
    ]
    assert sampled[0] == sampled[1] != sampled[2]


WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}
# SmolLM2-135M only calls tools when shown how: one worked example in the conversation.
FEW_SHOT = [
    {
        "role": "system",
        "content": "Answer weather questions by calling get_weather as "
        '<tool_call>{"name": "get_weather", "arguments": {"city": CITY}}</tool_call>',
    },
    {"role": "user", "content": "What is the weather in Rome?"},
    {
        "role": "assistant",
        "content": '<tool_call>{"name": "get_weather", "arguments": {"city": "Rome"}}</tool_call>',
    },
    {"role": "user", "content": "What is the weather in Paris?"},
]


@pytest.mark.parametrize("stream", [False, True])
def test_tools_round_trip(openai_client, model_id, stream):
    kwargs = dict(model=model_id, messages=FEW_SHOT, tools=[WEATHER_TOOL], max_tokens=40)
    if stream:
        chunks = list(openai_client.chat.completions.create(**kwargs, stream=True))
        assert "".join(c.choices[0].delta.content or "" for c in chunks) == ""  # markup never leaks
        calls = [call for c in chunks for call in c.choices[0].delta.tool_calls or []]
        finish = chunks[-1].choices[0].finish_reason
    else:
        message = openai_client.chat.completions.create(**kwargs).choices[0]
        calls, finish = message.message.tool_calls, message.finish_reason
    assert finish == "tool_calls" and len(calls) == 1
    call = calls[0]
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}

    follow_up = FEW_SHOT + [
        {"role": "assistant", "content": None, "tool_calls": [call.model_dump(exclude={"index"})]},
        {"role": "tool", "tool_call_id": call.id, "content": "Sunny, 24 C"},
    ]
    answer = openai_client.chat.completions.create(
        model=model_id, messages=follow_up, tools=[WEATHER_TOOL], max_tokens=24
    )
    assert "24" in answer.choices[0].message.content and answer.choices[0].finish_reason == "stop"


def test_embeddings_are_normalized_and_meaningful(openai_client, api_service):
    texts = ["The kettle boils water.", "Water is boiled by the kettle.", "Night trains reach the coast."]
    response = openai_client.embeddings.create(model="all-MiniLM-L6-v2", input=texts)
    vectors = np.array([d.embedding for d in response.data])
    assert [d.index for d in response.data] == [0, 1, 2] and vectors.shape == (3, 384)
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-4)
    assert vectors[0] @ vectors[1] > vectors[0] @ vectors[2] + 0.2
    assert np.allclose(vectors, api_service.embed(texts), atol=1e-5)
    assert response.usage.prompt_tokens > 0
    single = openai_client.embeddings.create(
        model="all-MiniLM-L6-v2", input=texts[0], encoding_format="base64"
    )
    decoded = np.frombuffer(base64.b64decode(single.data[0].embedding), dtype="<f4")
    assert np.allclose(decoded, vectors[0], atol=1e-5)


def _error(exc: openai.APIStatusError) -> dict:
    body = exc.response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    return body["error"]


def test_errors_come_in_openai_shape(openai_client, model_id, base_url):
    with pytest.raises(openai.NotFoundError) as exc:
        openai_client.chat.completions.create(model="gpt-4o", messages=QUESTION)
    assert _error(exc.value)["code"] == "model_not_found"
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client.chat.completions.create(model=model_id, messages=QUESTION, max_tokens=100_000)
    assert _error(exc.value)["param"] == "max_tokens" and "at most 64" in exc.value.message
    with pytest.raises(openai.BadRequestError) as exc:
        openai_client.chat.completions.create(model=model_id, messages=[{"role": "wizard", "content": "hi"}])
    assert _error(exc.value)["type"] == "invalid_request_error" and "messages" in _error(exc.value)["param"]
    with pytest.raises(openai.BadRequestError):
        openai_client.chat.completions.create(model=model_id, messages=[])
    with pytest.raises(openai.AuthenticationError) as exc:
        openai.OpenAI(base_url=f"{base_url}/v1", api_key="ember-wrong", max_retries=0).models.list()
    assert _error(exc.value)["type"] == "authentication_error"
    with pytest.raises(openai.APIStatusError) as exc:
        openai_client.embeddings.create(model="m", input=["x" * 1000] * 60)  # ~60 KB > the 50 KB limit
    assert exc.value.status_code == 413 and _error(exc.value)["type"] == "request_too_large"
