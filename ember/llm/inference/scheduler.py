"""The LLM scheduler: one worker thread owns the local model; callers on any thread submit requests.

Only model calls queue here, so a request's retrieval, SQL or remote-LLM calls run side by side with
other requests' generations. Requests (messages, tools, sampling, an output channel, a cancel flag) go
into a queue the worker loop drains. Today the loop runs one request at a time to completion, token by
token through ``ChatModel.stream``, checking the cancel flag between tokens; continuous batching will
later replace that loop with one that steps several requests per decode step.

    scheduler = LLMScheduler(ChatModel.load("smollm2-135m-instruct"))
    scheduler.chat(messages, max_tokens=64)            # blocks until its turn and the result
    for delta in scheduler.stream(messages): ...       # deltas as the worker produces them
    scheduler.close()
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ember.llm.inference.chat import ChatDelta, ChatModel, ChatResult

_END = ("end", None)


class SchedulerClosed(RuntimeError):
    """The scheduler was closed before or while the request ran."""


@dataclass
class _Request:
    messages: list[dict]
    tools: list[dict] | None
    sampling: dict[str, Any]
    output: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)  # ("delta"|"error"|"end", value)
    cancelled: threading.Event = field(default_factory=threading.Event)


class RequestStream(Iterator[ChatDelta]):
    """The caller's end of one request. Closing it (break, ``close()``, garbage collection, or from
    another thread) cancels the request: waiting, it is skipped; running, it stops at the next token."""

    def __init__(self, request: _Request) -> None:
        self._request = request
        self._done = False

    def __next__(self) -> ChatDelta:
        if self._done:
            raise StopIteration
        kind, value = self._request.output.get()
        if kind == "delta":
            return value
        self._done = True
        if kind == "error":
            raise value
        raise StopIteration

    def close(self) -> None:
        self._done = True  # deltas the worker already produced are dropped, not yielded
        self._request.cancelled.set()
        # Wake a reader blocked on another thread now rather than when the worker reaches the request.
        self._request.output.put(_END)

    def __del__(self) -> None:
        self.close()


class LLMScheduler:
    """Serialises the model calls of concurrent requests; same ``chat``/``stream``/``engine`` as ChatModel."""

    def __init__(self, model: ChatModel) -> None:
        self.model = model
        self.engine = model.engine  # what callers read for the tokenizer and context window
        self.waiting = self.running = self.cancelled = self.completed = self.failed = 0
        self._counter_lock = threading.Lock()
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        self._thread = threading.Thread(target=self._work, name="ember-llm-scheduler", daemon=True)
        self._thread.start()

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        """One assistant turn, like ``ChatModel.chat``; blocks until the request's turn and its result."""
        deltas = self.stream(messages, tools, **sampling)
        try:
            for delta in deltas:
                if delta.result is not None:
                    return delta.result
        finally:
            deltas.close()
        raise SchedulerClosed("the request ended without a result")

    def stream(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> RequestStream:
        """Queue a request now; iterate the returned stream for its deltas (the last carries the result)."""
        request = _Request(messages, tools, sampling)
        with self._counter_lock:  # held with the closing check so no request slips in behind close()
            if self._closing.is_set():
                raise SchedulerClosed("the LLM scheduler is closed")
            self.waiting += 1
            self._requests.put(request)
        return RequestStream(request)

    def close(self, wait_s: float = 30.0) -> None:
        """Stop the worker after its current token; requests still queued fail with SchedulerClosed."""
        with self._counter_lock:
            self._closing.set()
            self._requests.put(None)
        self._thread.join(wait_s)

    def _count(self, **changes: int) -> None:
        with self._counter_lock:
            for name, change in changes.items():
                setattr(self, name, getattr(self, name) + change)

    def _work(self) -> None:
        while (request := self._requests.get()) is not None:
            self._count(waiting=-1)
            if request.cancelled.is_set():
                self._count(cancelled=1)
            elif self._closing.is_set():
                request.output.put(("error", SchedulerClosed("the LLM scheduler closed")))
                self._count(failed=1)
            else:
                self._count(running=1)
                outcome = self._run(request)
                self._count(running=-1, **{outcome: 1})
            request.output.put(_END)

    def _run(self, request: _Request) -> str:
        """Generate one request to its end; returns the counter its outcome adds to."""
        deltas = self.model.stream(request.messages, request.tools, **request.sampling)
        try:
            for delta in deltas:
                if request.cancelled.is_set():
                    return "cancelled"
                if self._closing.is_set():
                    raise SchedulerClosed("the LLM scheduler closed during generation")
                request.output.put(("delta", delta))
            return "completed"
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
            request.output.put(("error", exc))
            return "failed"
        finally:
            deltas.close()  # frees the engine's generation (and its KV cache) at once
