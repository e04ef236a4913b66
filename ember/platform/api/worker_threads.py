"""Blocking work of requests (a service generator: SQL, retrieval, LLM calls) on worker threads, relayed
to the request's asyncio task.

Each request gets its own thread, so retrieval, SQL and remote-LLM calls of concurrent requests run side
by side; only local-model calls queue, in the service's LLM scheduler. Their torch work runs on one core
(``on_one_core``): the scheduler's worker is the one thread with an OpenMP team, which keeps its decode
steps at full speed (ember.llm.inference.scheduler). Cancelling a request (client
gone, timeout) sets its flag: the thread stops at the next item and closes the iterator, which cancels
the request's generation in the scheduler.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from ember.platform.service import use_one_cpu_thread

MAX_THREADS = 64  # above the per-key concurrency limit's default, so requests never wait for a thread


def on_one_core(function: Callable[..., Any], *args: Any) -> Any:
    """``function(*args)`` with the calling thread's torch work on one core (for starlette's threads)."""
    use_one_cpu_thread()
    return function(*args)


@dataclass
class _Job:
    make_iterator: Callable[[], Iterator[Any]]
    loop: asyncio.AbstractEventLoop
    out: asyncio.Queue
    cancelled: threading.Event = field(default_factory=threading.Event)


class WorkerThreads:
    """Runs iterator-producing jobs on a pool of threads, one job per thread."""

    def __init__(self, max_threads: int = MAX_THREADS) -> None:
        self._pool = ThreadPoolExecutor(
            max_threads, thread_name_prefix="ember-request", initializer=use_one_cpu_thread
        )

    async def stream(self, make_iterator: Callable[[], Iterator[Any]]) -> AsyncIterator[Any]:
        """Items of ``make_iterator()`` as its thread produces them; leaving early cancels the job."""
        job = _Job(make_iterator, asyncio.get_running_loop(), asyncio.Queue())
        self._pool.submit(self._work, job)
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

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def _send(self, job: _Job, kind: str, value: Any = None) -> None:
        try:
            job.loop.call_soon_threadsafe(job.out.put_nowait, (kind, value))
        except RuntimeError:  # the request's event loop is gone (server shutting down)
            job.cancelled.set()

    def _work(self, job: _Job) -> None:
        if job.cancelled.is_set():
            return
        iterator = None
        try:
            iterator = job.make_iterator()
            for item in iterator:
                if job.cancelled.is_set():
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
