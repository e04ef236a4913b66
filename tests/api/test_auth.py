"""API keys: hashed storage, no/wrong/revoked keys, scopes, and auth on by default off loopback."""

from __future__ import annotations

import hashlib

import httpx
import pytest
from sqlalchemy import select

from ember.platform.settings import is_loopback
from ember.platform.tables import ApiKey


def _get(base_url: str, path: str, key: str | None) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return httpx.get(f"{base_url}{path}", headers=headers, timeout=30)


def _assert_error(response: httpx.Response, status: int, kind: str) -> None:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["type"] == kind and error["message"]


def test_missing_wrong_and_revoked_keys_get_401(base_url, keys):
    _assert_error(_get(base_url, "/v1/collections", None), 401, "authentication_error")
    _assert_error(_get(base_url, "/v1/collections", "ember-not-a-real-key"), 401, "authentication_error")
    _assert_error(_get(base_url, "/v1/collections", keys["read"] + "x"), 401, "authentication_error")
    _assert_error(_get(base_url, "/v1/collections", keys["revoked"]), 401, "authentication_error")
    assert _get(base_url, "/v1/collections", None).headers["www-authenticate"] == "Bearer"
    assert _get(base_url, "/v1/collections", keys["read"]).status_code == 200


def test_scopes(base_url, keys):
    body = {"name": "scoped"}
    for key, status in (("read", 403), ("write", 201), ("admin", 409)):
        response = httpx.post(
            f"{base_url}/v1/collections", json=body, headers={"Authorization": f"Bearer {keys[key]}"}
        )
        assert response.status_code == status, key
    _assert_error(
        httpx.delete(
            f"{base_url}/v1/collections/scoped", headers={"Authorization": f"Bearer {keys['read']}"}
        ),
        403,
        "permission_error",
    )


def test_keys_are_stored_hashed(api_service, keys):
    with api_service.db.session() as session:
        rows = session.scalars(select(ApiKey)).all()
    stored = {row.key_hash for row in rows}
    assert hashlib.sha256(keys["read"].encode()).hexdigest() in stored
    assert not any(keys["read"] in (row.key_hash, row.prefix) for row in rows)
    assert api_service.verify_key(keys["revoked"]) is None
    assert api_service.verify_key(keys["write"]).scopes == ["write"]


def test_bad_scopes_are_refused(api_service):
    from ember.platform.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="unknown scope"):
        api_service.create_key("x", ["superuser"])


@pytest.mark.parametrize(
    "host, loopback",
    [("127.0.0.1", True), ("::1", True), ("localhost", True), ("0.0.0.0", False), ("10.1.2.3", False)],
)
def test_auth_defaults_on_off_loopback(host, loopback):
    assert is_loopback(host) is loopback
