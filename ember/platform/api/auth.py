"""Scope checks. The Gate has already identified the key (or found auth off) for this request."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Request

from ember.platform.api.errors import ApiError
from ember.platform.types import SCOPES


def require(scope: str) -> Callable[[Request], None]:
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}")

    def check(request: Request) -> None:
        key = request.state.api_key
        if key is not None and not key.allows(scope):
            raise ApiError(403, f"this API key lacks the '{scope}' scope", code="insufficient_scope")

    return check
