"""The ASGI layer every request passes first: Host and Origin checks, body size limit, API key,
per-key concurrency, metrics.

The Host and Origin checks keep web pages away from an API without auth (the default on loopback):
a foreign Host is DNS rebinding (a page whose name now resolves to 127.0.0.1), a foreign Origin is a
page posting across sites. It wraps the whole response (streaming included), so a key's concurrency
slot is held until its last byte is sent, and latencies measure the full response.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ember.platform.api.errors import error_body
from ember.platform.api.metrics import ApiMetrics
from ember.platform.settings import is_loopback
from ember.platform.types import KeyInfo

PUBLIC_PATHS = {"/health", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


class BodyTooLarge(HTTPException):
    """Raised while the route reads a body without Content-Length; the app's handlers answer 413.

    An HTTPException because FastAPI turns any other error met while parsing a body into a 400.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body exceeds the limit of {limit} bytes")


def host_name(authority: str) -> str:
    """The name in a Host header (``name:port``, ``[::1]:port``), lower case, without port or final dot."""
    if authority.startswith("["):
        return authority[1:].partition("]")[0].lower()
    name, _, port = authority.rpartition(":")
    return (name if name and port.isdigit() else authority).rstrip(".").lower()


class Gate:
    def __init__(
        self,
        app: ASGIApp,
        verify_key: Callable[[str], KeyInfo | None],
        metrics: ApiMetrics,
        auth_required: bool,
        max_body_bytes: int,
        max_upload_bytes: int,
        concurrency_per_key: int,
        allowed_hosts: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
    ) -> None:
        self.app, self.verify_key, self.metrics = app, verify_key, metrics
        self.allowed_hosts = {host_name(h) for h in allowed_hosts if h}
        self.allowed_origins = {o.rstrip("/").lower() for o in allowed_origins}
        self.auth_required = auth_required
        self.max_body_bytes, self.max_upload_bytes = max_body_bytes, max_upload_bytes
        self.concurrency_per_key = concurrency_per_key
        self.in_flight: Counter[str] = Counter()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = {"code": 500}

        async def send_tracked(message: Message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        try:
            await self._handle(scope, receive, send_tracked)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")
            self.metrics.requests.labels(scope["method"], route, str(status["code"])).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - started)

    def _browser_refusal(self, scope: Scope, headers: dict[str, str]) -> tuple[int, str, str] | None:
        """(status, message, code) for a request that a web page may have sent on its own, else None."""
        authority = headers.get("host", "")  # none only from HTTP/1.0 clients, never from a browser
        local_address = (scope.get("server") or ("",))[0]  # the address the request arrived on
        name = host_name(authority)
        if authority and not (
            "*" in self.allowed_hosts
            or name in self.allowed_hosts
            or name == str(local_address).lower()
            or is_loopback(name)
        ):
            return (
                421,
                f"host '{authority}' is not served here; add it to api_allowed_hosts "
                "(EMBER_API_ALLOWED_HOSTS) to allow it",
                "host_not_allowed",
            )
        origin = headers.get("origin")
        if origin is None:
            return None
        same_origin = bool(authority) and urlsplit(origin).netloc.lower() == authority.lower()
        if same_origin or "*" in self.allowed_origins or origin.rstrip("/").lower() in self.allowed_origins:
            return None
        return (
            403,
            f"requests from origin '{origin}' are refused; add it to api_allowed_origins "
            "(EMBER_API_ALLOWED_ORIGINS) to allow it",
            "origin_not_allowed",
        )

    async def _handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"]
        limit = self.max_upload_bytes if path.endswith("/documents") else self.max_body_bytes
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if refusal := self._browser_refusal(scope, headers):
            await _reject(send, *refusal)
            return
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > limit:
            await _reject(
                send, 413, f"request body of {int(length)} bytes exceeds the limit of {limit} bytes"
            )
            return

        key = None
        token = headers.get("authorization", "")
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if path not in PUBLIC_PATHS and self.auth_required:
            if not token:
                await _reject(
                    send, 401, "missing API key: send 'Authorization: Bearer <key>'", "missing_api_key"
                )
                return
            key = await run_in_threadpool(self.verify_key, token)
            if key is None:
                await _reject(send, 401, "invalid or revoked API key", "invalid_api_key")
                return
        scope.setdefault("state", {})["api_key"] = key

        slot = str(key.id) if key else "anonymous"
        if path not in PUBLIC_PATHS and self.in_flight[slot] >= self.concurrency_per_key:
            await _reject(
                send,
                429,
                f"too many concurrent requests for this key (limit {self.concurrency_per_key})",
                "concurrency_limit",
            )
            return
        self.in_flight[slot] += 1
        counted = path not in PUBLIC_PATHS  # so a scrape of /metrics does not count itself
        if counted:
            self.metrics.in_flight.inc()
        received = {"bytes": 0}

        async def receive_limited() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                received["bytes"] += len(message.get("body", b""))
                if received["bytes"] > limit:
                    raise BodyTooLarge(limit)
            return message

        started_response = {"yes": False}

        async def send_marked(message: Message) -> None:
            started_response["yes"] = started_response["yes"] or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive_limited, send_marked)
        except BodyTooLarge as exc:
            if not started_response["yes"]:
                await _reject(send, 413, exc.detail)
        finally:
            self.in_flight[slot] -= 1
            if counted:
                self.metrics.in_flight.dec()


async def _reject(send: Send, status: int, message: str, code: str | None = None) -> None:
    body = json.dumps(error_body(status, message, None, code)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", b"Bearer"))
    if status == 429:  # a slot frees when one of the key's requests ends
        headers.append((b"retry-after", b"1"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
