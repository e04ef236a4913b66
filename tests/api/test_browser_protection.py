"""A local Ember without auth is safe from web pages: foreign Host headers (DNS rebinding) get 421,
foreign Origin headers (a page posting to 127.0.0.1) get 403, and CORS is off unless origins are allowed."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ember.platform.api.app import create_app
from ember.platform.service import EmberService
from ember.platform.settings import Settings
from tests.api.server import running

ALLOWED_ORIGIN = "https://notes.example"


def _serve(home: Path, **settings) -> Iterator[str]:
    service = EmberService(
        Settings(home=home, database_url=f"sqlite:///{home / 'ember.db'}", sync_indexes=False, **settings)
    )
    service.create_collection("notes")
    with running(create_app(service, auth_required=False)) as url:  # auth off, as on loopback
        yield url
    service.db.dispose()


@pytest.fixture(scope="module")
def url(tmp_path_factory) -> Iterator[str]:
    yield from _serve(tmp_path_factory.mktemp("browser-home"))


@pytest.fixture(scope="module")
def allowing_url(tmp_path_factory) -> Iterator[str]:
    yield from _serve(
        tmp_path_factory.mktemp("browser-allow-home"),
        api_allowed_hosts=["ember.internal"],
        api_allowed_origins=[ALLOWED_ORIGIN],
    )


def _port(url: str) -> int:
    return httpx.URL(url).port


def test_a_rebound_host_name_is_refused(url):
    # DNS rebinding: the page's own name now resolves to 127.0.0.1, so the browser sends that name.
    for path in ("/v1/collections", "/health"):
        response = httpx.get(f"{url}{path}", headers={"Host": f"attacker.example:{_port(url)}"})
        assert response.status_code == 421, path
        assert "api_allowed_hosts" in response.json()["error"]["message"]
    for host in ("127.0.0.1", "localhost", "[::1]"):
        assert httpx.get(f"{url}/v1/collections", headers={"Host": f"{host}:{_port(url)}"}).status_code == 200


def test_a_foreign_origin_cannot_upload_or_read(url):
    evil = {"Origin": "https://attacker.example"}
    upload = httpx.post(
        f"{url}/v1/collections/notes/documents", files={"file": ("x.txt", b"planted")}, headers=evil
    )
    assert upload.status_code == 403 and "api_allowed_origins" in upload.json()["error"]["message"]
    assert httpx.get(f"{url}/v1/collections", headers={"Origin": "null"}).status_code == 403
    assert httpx.get(f"{url}/v1/collections/notes/documents").json()["data"] == []
    # The API's own pages (/docs) send their own origin: same-origin requests pass.
    assert httpx.get(f"{url}/v1/collections", headers={"Origin": url}).status_code == 200


def test_cors_is_off_by_default(url):
    response = httpx.get(f"{url}/v1/collections")
    assert response.status_code == 200 and "access-control-allow-origin" not in response.headers
    preflight = httpx.options(
        f"{url}/v1/search",
        headers={"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers


def test_allow_lists_admit_their_hosts_and_origins_with_cors(allowing_url):
    port = _port(allowing_url)
    assert httpx.get(f"{allowing_url}/health", headers={"Host": f"ember.internal:{port}"}).status_code == 200
    assert httpx.get(f"{allowing_url}/health", headers={"Host": f"other.internal:{port}"}).status_code == 421
    allowed = httpx.get(f"{allowing_url}/v1/collections", headers={"Origin": ALLOWED_ORIGIN})
    assert allowed.status_code == 200 and allowed.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    preflight = httpx.options(
        f"{allowing_url}/v1/search",
        headers={
            "Origin": ALLOWED_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert preflight.status_code == 200 and preflight.headers["access-control-allow-origin"] == ALLOWED_ORIGIN
    other = httpx.get(f"{allowing_url}/v1/collections", headers={"Origin": "https://attacker.example"})
    assert other.status_code == 403
