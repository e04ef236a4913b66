"""Plain chat completions go through the configured LLM: with llm_base_url set, a real Ember server
forwards them to a real OpenAI-compatible server (tests/agents/openai_server.py over SmolLM2)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ember.agents.backends import LocalBackend
from ember.llm.inference.chat import ChatDelta, ChatResult
from ember.platform.api.app import create_app
from ember.platform.service import EmberService
from ember.platform.settings import Settings
from tests.agents.openai_server import make_app, serve
from tests.api.server import running

REMOTE_MODEL = "remote-smollm2"
MESSAGES = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


class RecordingBackend:
    """The remote server's model: the real local one, remembering each request it served and its reply."""

    def __init__(self, backend: LocalBackend) -> None:
        self.backend = backend
        self.requests: list[tuple[list[dict], dict]] = []
        self.replies: list[str] = []

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        self.requests.append((messages, sampling))
        result = self.backend.chat(messages, tools, **sampling)
        self.replies.append(result.text)
        return result

    def stream(
        self, messages: list[dict], tools: list[dict] | None = None, **sampling
    ) -> Iterator[ChatDelta]:
        self.requests.append((messages, sampling))
        for delta in self.backend.stream(messages, tools, **sampling):
            if delta.result is not None:
                self.replies.append(delta.result.text)
            yield delta


@pytest.fixture(scope="module")
def remote(api_service) -> RecordingBackend:
    return RecordingBackend(api_service.llm)


@pytest.fixture(scope="module")
def ember_service(tmp_path_factory, remote) -> Iterator[EmberService]:
    home = tmp_path_factory.mktemp("remote-llm-home")
    with serve(make_app(remote, "secret")) as remote_url:
        settings = Settings(
            home=home,
            database_url=f"sqlite:///{home / 'ember.db'}",
            llm_model=REMOTE_MODEL,
            llm_base_url=remote_url,
            llm_api_key="secret",
        )
        service = EmberService(settings)
        yield service
        service.db.dispose()


@pytest.fixture(scope="module")
def client(ember_service):  # noqa: ANN201
    from openai import OpenAI

    with running(create_app(ember_service, auth_required=False)) as url:
        yield OpenAI(base_url=f"{url}/v1", api_key="unused", timeout=120, max_retries=0)


@pytest.mark.parametrize("stream", [False, True])
def test_plain_chat_reaches_the_remote_llm(client, remote, ember_service, stream):
    served = len(remote.requests)
    kwargs = dict(model=REMOTE_MODEL, messages=MESSAGES, max_tokens=12)
    if stream:
        chunks = list(client.chat.completions.create(**kwargs, stream=True))
        text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        assert chunks[-1].choices[0].finish_reason in ("stop", "length")
    else:
        response = client.chat.completions.create(**kwargs)
        text = response.choices[0].message.content
        assert response.usage.completion_tokens > 0
    assert len(remote.requests) == served + 1
    assert remote.requests[-1] == (MESSAGES, {"max_tokens": 12})
    assert text.strip() == remote.replies[-1].strip() and "Paris" in text
    assert "scheduler" not in vars(ember_service)  # the local model was never loaded
