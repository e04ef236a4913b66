"""The judge: one chat backend asked for a grade or a preference, a malformed verdict retried once."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ember.evals.judge.prompts import grade_messages, pair_messages, retry_messages
from ember.evals.judge.verdicts import PASS_FAIL, RUBRICS, parse_grade, parse_preference
from ember.platform.errors import InvalidInputError

if TYPE_CHECKING:
    from ember.agents.backends import ChatBackend
    from ember.platform.service import EmberService

API_KEY_VARIABLE = "EMBER_JUDGE_API_KEY"
LOCAL = "local"  # the judge target meaning the service's own LLM
DEFAULT_MAX_TOKENS = 96


@dataclass(frozen=True)
class Verdict:
    value: int | bool | str | None  # None: unparsed after the retry
    replies: tuple[str, ...]  # the judge's raw replies, two when it was retried

    @property
    def parsed(self) -> bool:
        return self.value is not None


@dataclass(frozen=True)
class PairVerdict:
    """Both orders of one comparison. ``outcome``: "a", "b", "tie" or "unparsed"."""

    first: Verdict  # answer_a shown as A
    second: Verdict  # answer_a shown as B

    @property
    def consistent(self) -> bool | None:
        """Both orders name the same outcome; None when either is unparsed."""
        if not (self.first.parsed and self.second.parsed):
            return None
        return _winner(self.first.value, swapped=False) == _winner(self.second.value, swapped=True)

    @property
    def outcome(self) -> str:
        if self.consistent is None:
            return "unparsed"
        # A verdict that flips with the order is the position talking, not the answers: a tie.
        return _winner(self.first.value, swapped=False) if self.consistent else "tie"


def _winner(preference: object, swapped: bool) -> str:
    if preference == "tie":
        return "tie"
    return {"A": "b", "B": "a"}[preference] if swapped else {"A": "a", "B": "b"}[preference]


class Judge:
    def __init__(self, backend: ChatBackend, max_tokens: int = DEFAULT_MAX_TOKENS) -> None:
        self.backend, self.max_tokens = backend, max_tokens

    @property
    def name(self) -> str:
        return self.backend.name

    def _ask(self, messages: list[dict], parse: Callable[[str], object], example: str) -> Verdict:
        sampling = {"max_tokens": self.max_tokens, "temperature": 0.0}
        reply = self.backend.chat(messages, **sampling).text
        value = parse(reply)
        if value is not None:
            return Verdict(value, (reply,))
        second = self.backend.chat(retry_messages(messages, reply, example), **sampling).text
        return Verdict(parse(second), (reply, second))

    def grade(self, question: str, answer: str, reference: str, rubric: str = PASS_FAIL) -> Verdict:
        """1..5 or True/False for ``answer`` against the correct ``reference``."""
        if rubric not in RUBRICS:
            raise ValueError(f"rubric must be one of {', '.join(RUBRICS)}, got {rubric!r}")
        example = "PASS" if rubric == PASS_FAIL else "4"
        messages = grade_messages(question, answer, reference, rubric)
        return self._ask(messages, lambda reply: parse_grade(reply, rubric), example)

    def compare(
        self, question: str, answer_a: str, answer_b: str, reference: str | None = None
    ) -> PairVerdict:
        """Asked in both orders, so a judge that favours a position shows it."""
        first = self._ask(pair_messages(question, answer_a, answer_b, reference), parse_preference, "A")
        second = self._ask(pair_messages(question, answer_b, answer_a, reference), parse_preference, "A")
        return PairVerdict(first, second)


@dataclass(frozen=True)
class JudgeSpec:
    """Which judge, as every judging command and `ember eval all` give it: ``target`` "local" (the
    service's own LLM: the local engine or its configured endpoint) or an OpenAI-compatible /v1 URL with
    its ``model`` and key (``api_key`` or $EMBER_JUDGE_API_KEY; the key never goes into a run's config)."""

    target: str = LOCAL
    model: str | None = None
    api_key: str | None = None
    max_tokens: int = DEFAULT_MAX_TOKENS

    def build(self, make_service: Callable[[], EmberService]) -> Judge:
        """The judge; ``make_service`` is called only for a local one."""
        if self.target == LOCAL:
            return Judge(make_service().llm, self.max_tokens)
        from ember.agents.backends import OpenAICompatibleBackend

        if not self.model:
            raise InvalidInputError("a remote judge needs its model name (--judge-model)")
        key = self.api_key if self.api_key is not None else os.environ.get(API_KEY_VARIABLE, "")
        try:
            return Judge(OpenAICompatibleBackend(self.target, self.model, key), self.max_tokens)
        except ValueError as exc:
            raise InvalidInputError(f"--judge: give 'local' or a URL; {exc}") from exc


def check_rubric(rubric: str) -> str:
    if rubric not in RUBRICS:
        raise InvalidInputError(f"the judge's rubric must be one of {', '.join(RUBRICS)}, got {rubric!r}")
    return rubric
