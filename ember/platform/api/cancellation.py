"""Waiting on work while watching the client: a request whose client left stops its work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from ember.platform.api.errors import ApiError

T = TypeVar("T")
POLL_SECONDS = 0.2


async def until_done_or_gone(request: Request, work: Awaitable[T], timeout_s: float) -> T:
    """The result of ``work``; cancelled when the client disconnects, 504 after ``timeout_s``."""
    task = asyncio.ensure_future(work)
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                done, _ = await asyncio.wait({task}, timeout=POLL_SECONDS)
                if done:
                    return task.result()
                if await request.is_disconnected():
                    raise asyncio.CancelledError
    except TimeoutError as exc:
        raise ApiError(504, f"the request took longer than {timeout_s:g} s and was cancelled") from exc
    finally:
        if not task.done():
            task.cancel()
