"""One question through the service, timed from the call to the first streamed token and to the answer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ember.platform.service import EmberService
    from ember.platform.types import Answer


@dataclass(frozen=True)
class TimedAnswer:
    answer: Answer
    first_token_s: float  # the total when nothing was streamed (e.g. "I don't know" without the model)
    total_s: float

    @property
    def tokens_per_s(self) -> float | None:
        """Generated tokens over the time after the first one (decode speed); None without a decode."""
        decode = self.total_s - self.first_token_s
        tokens = self.answer.usage.get("completion_tokens", 0)
        return (tokens - 1) / decode if tokens > 1 and decode > 0 else None


def timed_ask(
    service: EmberService, question: str, collection: str, agent: bool, **sampling: Any
) -> TimedAnswer:
    start, first, answer = time.perf_counter(), None, None
    for event in service.ask_stream(question, collection, agent=agent, **sampling):
        if event.kind == "token" and first is None:
            first = time.perf_counter() - start
        if event.kind == "done":
            answer = event.answer
    total = time.perf_counter() - start
    if answer is None:
        raise RuntimeError("answering ended without a 'done' event")
    return TimedAnswer(answer, first if first is not None else total, total)
