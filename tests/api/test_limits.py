"""Per-key concurrency and request timeouts, on a second server with tight limits."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import httpx
import pytest

from ember.platform.api.app import create_app
from ember.platform.service import EmberService
from tests.api.conftest import make_settings
from tests.api.server import running


@pytest.fixture(scope="module")
def tight_url(api_service, keys, smollm2_models_dir) -> Iterator[str]:
    settings = make_settings(
        api_service.settings.home,
        smollm2_models_dir,
        api_concurrency_per_key=1,
        api_timeout_s=1,
        api_max_tokens=512,
    )
    service = EmberService(settings)
    service.scheduler = api_service.scheduler  # one loaded model for the whole session
    with running(create_app(service, auth_required=True)) as url:
        yield url
    service.db.dispose()


def _headers(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def _metric(url: str, name: str) -> float:
    metrics = httpx.get(f"{url}/metrics").text
    return float(next(line for line in metrics.splitlines() if line.startswith(f"{name} ")).split()[1])


def test_second_concurrent_request_of_a_key_gets_429(tight_url, keys):
    release = threading.Event()

    def slow_body() -> Iterator[bytes]:  # keeps the first request in flight until released
        yield b'{"query": "kettle", '
        release.wait(60)
        yield b'"collections": ["notes"], "k": 1}'

    first: dict = {}

    def send_slowly() -> None:
        headers = _headers(keys["read"]) | {"Content-Type": "application/json"}
        first["response"] = httpx.post(
            f"{tight_url}/v1/search", content=slow_body(), headers=headers, timeout=90
        )

    sender = threading.Thread(target=send_slowly)
    sender.start()
    try:
        # Wait on the public metrics, not on requests with the same key: one of those arriving at the
        # same moment as the slow request would take the key's only slot and get that one refused.
        deadline = time.monotonic() + 30
        while _metric(tight_url, "ember_http_requests_in_flight") < 1:
            assert time.monotonic() < deadline, f"the slow request never counted as in flight: {first}"
            time.sleep(0.05)
        busy = httpx.get(f"{tight_url}/v1/models", headers=_headers(keys["read"]))
        other_key = httpx.get(f"{tight_url}/v1/models", headers=_headers(keys["write"]))
    finally:
        release.set()
        sender.join()
    assert busy.status_code == 429 and busy.json()["error"]["type"] == "rate_limit_error"
    assert busy.headers["retry-after"] == "1"
    assert other_key.status_code == 200
    assert first["response"].status_code == 200
    assert httpx.get(f"{tight_url}/v1/models", headers=_headers(keys["read"])).status_code == 200
    deadline = time.monotonic() + 10  # a response reaches the client just before its slot is freed
    while _metric(tight_url, "ember_http_requests_in_flight") > 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(tight_url, "ember_http_requests_in_flight") == 0


def _cancelled(url: str) -> float:
    return _metric(url, "ember_engine_cancelled_jobs")


def test_generation_past_the_timeout_gets_504_and_is_cancelled(tight_url, keys, model_id):
    before = _cancelled(tight_url)
    # 512 tokens take far more than the 1 s limit on any CPU.
    messages = [{"role": "user", "content": "Count from 1 to 500, separated by commas."}]
    body = {"model": model_id, "messages": messages, "max_tokens": 512}
    response = httpx.post(
        f"{tight_url}/v1/chat/completions", json=body, headers=_headers(keys["read"]), timeout=60
    )
    assert response.status_code == 504 and response.json()["error"]["type"] == "timeout_error"
    deadline = time.monotonic() + 30
    while _cancelled(tight_url) == before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _cancelled(tight_url) == before + 1


def _chunked(total: int) -> Iterator[bytes]:
    """A body sent with Transfer-Encoding: chunked, so the server learns its size only while reading."""
    for _ in range(total // 4096):
        yield b" " * 4096


def test_oversized_chunked_bodies_get_413(base_url, keys):
    headers = _headers(keys["admin"])
    search = httpx.post(
        f"{base_url}/v1/search",
        content=_chunked(200_000),  # the JSON limit in these tests is 0.05 MB
        headers=headers | {"Content-Type": "application/json"},
    )
    assert search.status_code == 413 and search.json()["error"]["type"] == "request_too_large"
    boundary = "ember-test-boundary"
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="big.txt"\r\n\r\n'

    def upload_body() -> Iterator[bytes]:
        yield head.encode()
        yield from _chunked(400_000)  # the upload limit in these tests is 0.1 MB
        yield f"\r\n--{boundary}--\r\n".encode()

    upload = httpx.post(
        f"{base_url}/v1/collections/notes/documents",
        content=upload_body(),
        headers=headers | {"Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    assert upload.status_code == 413 and upload.json()["error"]["type"] == "request_too_large"
