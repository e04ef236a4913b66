"""The judge's prompts. PROMPT_VERSION goes into every run's config: a changed prompt is a new judge.

The question to answer comes last and asks for one word, a form even a 135M model often follows
(judge-v1 put the instructions first and asked for a reason and a [[tag]]: SmolLM2-135M restated
the answer instead, and no verdict could be read). Tags and labels are still accepted by the parser.
"""

from __future__ import annotations

from ember.evals.judge.verdicts import SCALE

PROMPT_VERSION = "judge-v2"

_GRADE_SCALE = (
    "How well does the answer agree with the reference answer, which is correct? "
    "5: same facts; 4: right with a minor slip; 3: partly right; 2: mostly wrong; 1: wrong or no answer. "
    "Reply with one number from 1 to 5."
)
_GRADE_PASS_FAIL = (
    "Does the answer state the same facts as the reference answer, which is correct? Numbers must agree. "
    "Reply with one word: PASS or FAIL."
)
_PAIR = (
    "Which answer is more correct and more helpful{reference_hint}? Ignore their order and length. "
    "Reply with one letter: A, B, or C for a tie."
)
_RETRY = "I could not read a verdict in your reply. Reply with only the verdict, for example {example}."


def grade_messages(question: str, answer: str, reference: str, rubric: str) -> list[dict]:
    task = _GRADE_SCALE if rubric == SCALE else _GRADE_PASS_FAIL
    content = f"Question: {question}\nReference answer: {reference}\nAnswer: {answer}\n\n{task}"
    return [{"role": "user", "content": content}]


def pair_messages(question: str, answer_a: str, answer_b: str, reference: str | None) -> list[dict]:
    content = f"Question: {question}\n"
    if reference:
        content += f"Reference answer: {reference}\n"
    hint = " given the reference answer" if reference else ""
    content += f"Answer A: {answer_a}\nAnswer B: {answer_b}\n\n" + _PAIR.format(reference_hint=hint)
    return [{"role": "user", "content": content}]


def retry_messages(messages: list[dict], reply: str, example: str) -> list[dict]:
    """The conversation so far plus the request to restate the verdict alone."""
    return [
        *messages,
        {"role": "assistant", "content": reply},
        {"role": "user", "content": _RETRY.format(example=example)},
    ]
