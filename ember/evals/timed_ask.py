"""One question through the service, timed from the call to the first streamed token and to the answer."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ember.platform.service import EmberService
    from ember.platform.types import Answer


@dataclass(frozen=True)
class TimedAnswer:
    answer: Answer
    first_token_s: float  # the total when nothing was streamed (e.g. "I don't know" without the model)
    total_s: float


def timed_ask(
    service: EmberService, question: str, collection: str, agent: bool, max_tokens: int
) -> TimedAnswer:
    start, first, answer = time.perf_counter(), None, None
    for event in service.ask_stream(question, collection, agent=agent, max_tokens=max_tokens):
        if event.kind == "token" and first is None:
            first = time.perf_counter() - start
        if event.kind == "done":
            answer = event.answer
    total = time.perf_counter() - start
    if answer is None:
        raise RuntimeError("answering ended without a 'done' event")
    return TimedAnswer(answer, first if first is not None else total, total)
