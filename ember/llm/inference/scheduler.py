"""The LLM scheduler: one worker thread owns the local model; callers on any thread submit requests.

Only model calls queue here, so a request's retrieval, SQL or remote-LLM calls run side by side with
other requests' generations. Requests (messages, tools, sampling, an output channel, a cancel flag) go
into a queue the worker loop drains into a continuous-batching engine (batch_engine): up to
``max_running`` sequences decode together, one forward pass per step, over a paged KV cache of
``kv_blocks`` blocks whose full blocks are shared by requests with the same prefix. Requests beyond
``max_running`` wait; with ``max_waiting`` set, one more is refused with SchedulerBusy.
``max_running=1`` is the one-at-a-time server.

The worker thread owns the model from its load on (pass a function that loads it), so it is the one
thread of the process that runs OpenMP work on every core. libgomp spins between parallel regions only
while the process holds no more OpenMP threads than cores; another thread's idle team (from loading
the model, or allocating the KV cache) made every region of a decode step sleep and wake instead:
on 2 cores a step took 20 ms against 10. Other threads that use torch beside the server should run
on one thread (engine.use_one_cpu_thread).

    scheduler = LLMScheduler(lambda: ChatModel.load("smollm2-135m-instruct"), max_running=16)
    scheduler.chat(messages, max_tokens=64)            # blocks until the result
    for delta in scheduler.stream(messages): ...       # deltas as the worker produces them
    scheduler.close()
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from ember.llm.inference.batch_engine import BatchEngine, Sequence
from ember.llm.inference.chat import ChatDelta, ChatModel, ChatResult
from ember.llm.inference.sampling import SamplingParams

_END = ("end", None)


class SchedulerClosed(RuntimeError):
    """The scheduler was closed before or while the request ran."""


class SchedulerBusy(RuntimeError):
    """The waiting queue is full (``max_waiting``): the caller should retry later."""


@dataclass
class _Request:
    messages: list[dict]
    tools: list[dict] | None
    sampling: dict[str, Any]
    # ("prompt", token count) first, then ("chunk", StreamChunk)..., or ("error", exc); then ("end", None)
    output: queue.SimpleQueue = field(default_factory=queue.SimpleQueue)
    cancelled: threading.Event = field(default_factory=threading.Event)


class RequestStream(Iterator[ChatDelta]):
    """The caller's end of one request. Closing it (break, ``close()``, garbage collection, or from
    another thread) cancels the request: waiting, it is skipped; running, it stops at the next step."""

    def __init__(self, request: _Request, model: ChatModel) -> None:
        self._request = request
        self._done = False
        self._deltas = self._read(model)

    def __next__(self) -> ChatDelta:
        if self._done:
            raise StopIteration
        try:
            return next(self._deltas)
        except BaseException:
            self._done = True
            raise

    def close(self) -> None:
        self._done = True  # deltas the worker already produced are dropped, not yielded
        self._request.cancelled.set()
        # Wake a reader blocked on another thread now rather than when the worker reaches the request.
        self._request.output.put(_END)

    def __del__(self) -> None:
        self.close()

    def _read(self, model: ChatModel) -> Iterator[ChatDelta]:
        """Deltas, detokenized and tool-markup-filtered on the caller's thread, not the worker's."""
        kind, value = self._request.output.get()
        if kind == "error":
            raise value
        if kind == "prompt":
            yield from model.deltas(value, self._chunks())

    def _chunks(self):
        while not self._done:
            kind, value = self._request.output.get()
            if kind == "chunk":
                yield value
            elif kind == "error":
                raise value
            else:
                return


class LLMScheduler:
    """Batches the model calls of concurrent requests; same ``chat``/``stream``/``engine`` as ChatModel.

    ``max_running`` sequences generate together (1: one at a time, as before continuous batching);
    ``kv_blocks`` blocks of ``block_size`` tokens hold their keys and values; each step feeds at most
    ``token_budget`` tokens, so a long prompt is prefilled in chunks between decode steps."""

    def __init__(
        self,
        model: ChatModel | Callable[[], ChatModel],
        max_running: int = 1,
        kv_blocks: int = 1024,
        block_size: int = 16,
        token_budget: int = 512,
        max_waiting: int = 0,
    ) -> None:
        """Start the worker, which loads ``model`` (when it is a loader) and allocates the KV cache;
        returns once both are done, raising what they raised."""
        self.max_waiting = max_waiting  # 0: no cap
        self.cancelled = self.completed = self.failed = self.refused = 0
        # Forward passes, and the most sequences one of them gave a token: what shows batching at work.
        self.steps = self.peak_batch = 0
        self._queued = self._engine_waiting = self._engine_running = 0
        self._counter_lock = threading.Lock()
        self._requests: queue.SimpleQueue[_Request | None] = queue.SimpleQueue()
        self._closing = threading.Event()
        loaded: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()
        batch_args = (max_running, kv_blocks, block_size, token_budget)
        self._thread = threading.Thread(
            target=self._work, args=(model, batch_args, loaded), name="ember-llm-scheduler", daemon=True
        )
        self._thread.start()
        error = loaded.get()
        if error is not None:
            raise error

    def _load(self, model: ChatModel | Callable[[], ChatModel], batch_args: tuple[int, ...]) -> None:
        self.model = model if isinstance(model, ChatModel) else model()
        self.engine = self.model.engine  # what callers read for the tokenizer and context window
        self.batch = BatchEngine(self.model.engine, *batch_args)

    @property
    def waiting(self) -> int:
        """Requests not yet running: queued for the worker, or waiting (or preempted) in the batch."""
        return self._queued + self._engine_waiting

    @property
    def running(self) -> int:
        return self._engine_running

    @property
    def kv_blocks_used(self) -> int:
        return self.batch.pool.used

    @property
    def kv_blocks_total(self) -> int:
        return self.batch.pool.num_blocks

    @property
    def prefix_hit_rate(self) -> float:
        """Share of full prompt blocks found in the prefix cache, since the start."""
        return self.batch.pool.hit_rate

    def chat(self, messages: list[dict], tools: list[dict] | None = None, **sampling) -> ChatResult:
        """One assistant turn, like ``ChatModel.chat``; blocks until the request's result."""
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
            if self.max_waiting and self.waiting >= self.max_waiting:
                self.refused += 1
                raise SchedulerBusy(f"{self.waiting} requests are already waiting for the local model")
            self._queued += 1
            self._requests.put(request)
        return RequestStream(request, self.model)

    def close(self, wait_s: float = 30.0) -> None:
        """Stop the worker after its current step; running and queued requests fail with SchedulerClosed."""
        with self._counter_lock:
            self._closing.set()
            self._requests.put(None)
        self._thread.join(wait_s)

    def _count(self, **changes: int) -> None:
        with self._counter_lock:
            for name, change in changes.items():
                setattr(self, name, getattr(self, name) + change)

    def _publish(self) -> None:
        with self._counter_lock:
            self._engine_waiting, self._engine_running = len(self.batch.waiting), len(self.batch.running)

    def _work(
        self,
        model: ChatModel | Callable[[], ChatModel],
        batch_args: tuple[int, ...],
        loaded: queue.SimpleQueue,
    ) -> None:
        try:
            self._load(model, batch_args)
        except BaseException as exc:  # noqa: BLE001 - re-raised by __init__ in the caller's thread
            loaded.put(exc)
            return
        loaded.put(None)
        requests: dict[Sequence, _Request] = {}
        while not self._closing.is_set():
            try:
                # Block for work only when nothing is generating.
                request = self._requests.get(block=not requests)
            except queue.Empty:
                request = False
            if request is None:
                break
            if request:
                self._admit(request, requests)
                continue  # drain every queued request before the next step
            self._step(requests)
        closed = SchedulerClosed("the LLM scheduler closed")
        for sequence, request in requests.items():
            self.batch.drop(sequence)
            self._finish(request, "failed", ("error", closed))
        while (request := self._requests.get_nowait() if not self._requests.empty() else None) is not None:
            self._count(_queued=-1)
            self._finish(request, "cancelled" if request.cancelled.is_set() else "failed", ("error", closed))
        self._publish()

    def _admit(self, request: _Request, requests: dict[Sequence, _Request]) -> None:
        if request.cancelled.is_set():
            self._count(_queued=-1)
            self._finish(request, "cancelled")
            return
        try:
            prompt = self.model.prompt(request.messages, request.tools)
            sequence = self.batch.add(prompt, SamplingParams(**request.sampling), request.cancelled)
        except Exception as exc:  # noqa: BLE001 - re-raised in the caller's thread
            self._count(_queued=-1)
            self._finish(request, "failed", ("error", exc))
            return
        requests[sequence] = request
        request.output.put(("prompt", len(prompt)))
        with self._counter_lock:  # moves from queued to the batch's waiting at once: no gap in `waiting`
            self._queued -= 1
            self._engine_waiting += 1

    def _step(self, requests: dict[Sequence, _Request]) -> None:
        try:
            events = self.batch.step()
        except Exception as exc:  # noqa: BLE001 - a failed step fails the requests it served
            for sequence in list(self.batch.running):
                self.batch.drop(sequence)
                self._finish(requests.pop(sequence), "failed", ("error", exc))
            events = []
        self.steps += 1
        self.peak_batch = max(self.peak_batch, len({sequence for sequence, _ in events}))
        for sequence, chunk in events:
            requests[sequence].output.put(("chunk", chunk))
            if chunk.finish_reason:
                self._finish(requests.pop(sequence), "completed")
        for sequence in [s for s in requests if s.cancelled.is_set()]:
            self.batch.drop(sequence)
            self._finish(requests.pop(sequence), "cancelled")
        self._publish()

    def _finish(self, request: _Request, outcome: str, last: tuple | None = None) -> None:
        if last is not None:
            request.output.put(last)
        request.output.put(_END)
        self._count(**{outcome: 1})
