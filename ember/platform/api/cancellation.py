"""Waiting on work while watching the client: a request whose client left stops its work."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import TypeVar

from fastapi import Request

from ember.platform.api.errors import ApiError

T = TypeVar("T")


async def _disconnected(request: Request) -> None:
    """Returns when the client goes away (the body has been read, so only disconnects arrive)."""
    while (await request.receive())["type"] != "http.disconnect":
        pass


async def until_done_or_gone(request: Request, work: Awaitable[T], timeout_s: float) -> T:
    """The result of ``work``; cancelled when the client disconnects, 504 after ``timeout_s``."""
    task = asyncio.ensure_future(work)
    watcher = asyncio.ensure_future(_disconnected(request))
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.wait({task, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if task.done():
            return task.result()
        raise ApiError(499, "the client closed the request")  # nobody reads this: it ends the handler
    except TimeoutError as exc:
        raise ApiError(504, f"the request took longer than {timeout_s:g} s and was cancelled") from exc
    finally:
        watcher.cancel()
        if not task.done():
            task.cancel()
