"""The judge's prompts. PROMPT_VERSION goes into every run's config: a changed prompt is a new judge."""

from __future__ import annotations

from ember.evals.judge.verdicts import SCALE

PROMPT_VERSION = "judge-v1"

_SYSTEM = "You are a strict, impartial grader. You compare answers with the facts given, not with your taste."

_GRADE_SCALE = """Grade the ANSWER to the QUESTION against the REFERENCE answer, which is correct.
5: same facts as the reference; 4: right with a minor slip; 3: partly right; 2: mostly wrong;
1: wrong or no answer.
Reply with one short reason, then the grade in double brackets, for example: [[4]]"""

_GRADE_PASS_FAIL = """Decide whether the ANSWER to the QUESTION states the same facts as the REFERENCE answer,
which is correct. Numbers must agree. Reply with one short reason, then [[PASS]] or [[FAIL]]."""

_PAIR = """Two assistants answered the QUESTION. Decide which answer is more correct and more
helpful{reference_hint}. Ignore which one comes first and how long they are.
Reply with one short reason, then [[A]] if answer A is better, [[B]] if answer B is better,
or [[C]] for a tie."""

_RETRY = (
    "Your reply had no verdict I could read. Reply again with only the verdict tag, for example {example}."
)


def grade_messages(question: str, answer: str, reference: str, rubric: str) -> list[dict]:
    task = _GRADE_SCALE if rubric == SCALE else _GRADE_PASS_FAIL
    content = f"{task}\n\nQUESTION: {question}\nREFERENCE: {reference}\nANSWER: {answer}"
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": content}]


def pair_messages(question: str, answer_a: str, answer_b: str, reference: str | None) -> list[dict]:
    hint = ", given the REFERENCE answer, which is correct" if reference else ""
    content = _PAIR.format(reference_hint=hint) + f"\n\nQUESTION: {question}\n"
    if reference:
        content += f"REFERENCE: {reference}\n"
    content += f"ANSWER A: {answer_a}\nANSWER B: {answer_b}"
    return [{"role": "system", "content": _SYSTEM}, {"role": "user", "content": content}]


def retry_messages(messages: list[dict], reply: str, example: str) -> list[dict]:
    """The conversation so far plus the request to restate the verdict alone."""
    return [
        *messages,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": _RETRY.format(example=example)},
    ]
