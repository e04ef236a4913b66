"""One worker thread owns the chat model; requests queue in front of it.

Generations never run side by side, so no two requests can share or corrupt a KV cache (each
generation allocates its own cache inside the engine, and only one runs at a time). A request's
tokens travel to its asyncio task through a per-request queue. Cancelling a request (client gone,
timeout) sets its flag: a waiting request is skipped, a running one has its token iterator closed
at the next token.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

_STOP = object()


@dataclass
class _Job:
    make_iterator: Callable[[], Iterator[Any]]
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue
    cancelled: threading.Event = field(default_factory=threading.Event)


class EngineQueue:
    """Runs iterator-producing jobs one at a time on a dedicated thread."""

    def __init__(self) -> None:
        self._jobs: queue.Queue[_Job | None] = queue.Queue()
        self._thread = threading.Thread(target=self._work, name="ember-engine", daemon=True)
        self._thread.start()
        self.waiting = 0
        self.cancelled = 0  # jobs stopped early because their request went away

    async def stream(self, make_iterator: Callable[[], Iterator[Any]]) -> AsyncIterator[Any]:
        """Items of ``make_iterator()`` as the worker produces them; leaving early cancels the job."""
        job = _Job(make_iterator, asyncio.get_running_loop(), asyncio.Queue())
        self.waiting += 1
        self._jobs.put(job)
        try:
            while True:
                kind, value = await job.out.get()
                if kind == "item":
                    yield value
                elif kind == "error":
                    raise value
                else:
                    return
        finally:
            job.cancelled.set()

    async def run(self, call: Callable[[], Any]) -> Any:
        """The result of ``call()``, run on the worker thread."""
        results = [value async for value in self.stream(lambda: iter([call()]))]
        return results[0]

    def close(self, wait_s: float = 5.0) -> None:
        """Stop after the current job, so torch is not torn down in the middle of a step."""
        self._jobs.put(None)
        self._thread.join(wait_s)

    def _send(self, job: _Job, kind: str, value: Any = None) -> None:
        try:
            job.loop.call_soon_threadsafe(job.out.put_nowait, (kind, value))
        except RuntimeError:  # the request's event loop is gone (server shutting down)
            job.cancelled.set()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            self.waiting -= 1
            if job.cancelled.is_set():
                self.cancelled += 1
                continue
            iterator = None
            try:
                iterator = job.make_iterator()
                for item in iterator:
                    if job.cancelled.is_set():
                        self.cancelled += 1
                        break
                    self._send(job, "item", item)
                else:
                    self._send(job, "end")
            except Exception as exc:  # noqa: BLE001 - handed to the request, which maps it to an HTTP error
                self._send(job, "error", exc)
            finally:
                close = getattr(iterator, "close", None)
                if close:
                    close()
