"""Multiple-choice questions scored by the log-likelihood of each option, as lm-evaluation-harness does.

The context is ``"Question: {question}\\nAnswer:"`` and each option the continuation ``" {choice}"``.
``acc`` picks the option of highest summed log-likelihood; ``acc_norm`` divides each option's sum by
its length in UTF-8 bytes first (the harness's acc_norm), so long options are not penalised for being
long. Both are reported. A question's options are scored in one batched forward pass (for a quantized
model, its prefill path).
"""

from __future__ import annotations

import json
import string
from dataclasses import dataclass
from pathlib import Path

import torch

from ember.llm.inference.model import Transformer
from ember.platform.errors import InvalidInputError


@dataclass(frozen=True)
class MCQuestion:
    id: str
    question: str
    choices: tuple[str, ...]
    answer: int  # index into choices


@dataclass(frozen=True)
class MCResult:
    id: str
    answer: int
    loglikelihoods: tuple[float, ...]
    option_bytes: tuple[int, ...]

    @property
    def picked(self) -> int:
        return max(range(len(self.loglikelihoods)), key=lambda i: self.loglikelihoods[i])

    @property
    def picked_norm(self) -> int:
        per_byte = [ll / size for ll, size in zip(self.loglikelihoods, self.option_bytes, strict=True)]
        return max(range(len(per_byte)), key=per_byte.__getitem__)

    def as_item(self) -> dict:
        return {
            "id": self.id,
            "answer": self.answer,
            "picked": self.picked,
            "picked_norm": self.picked_norm,
            "correct": self.picked == self.answer,
            "correct_norm": self.picked_norm == self.answer,
            "loglikelihoods": list(self.loglikelihoods),
            "option_bytes": list(self.option_bytes),
        }


def _answer_index(value: object, choices: int, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InvalidInputError(f"{where}: field 'answer' must be an index or a letter, got {value!r}")
    if isinstance(value, str):
        letter = value.strip().upper()
        if len(letter) != 1 or letter not in string.ascii_uppercase:
            raise InvalidInputError(f"{where}: field 'answer' must be an index or a letter, got {value!r}")
        value = string.ascii_uppercase.index(letter)
    if not 0 <= value < choices:
        raise InvalidInputError(f"{where}: field 'answer' is {value}, outside the {choices} choices")
    return value


def _question(row: object, where: str) -> MCQuestion:
    if not isinstance(row, dict):
        raise InvalidInputError(f"{where}: a line must be a JSON object, got {type(row).__name__}")
    for field in ("id", "question", "choices", "answer"):
        if field not in row:
            raise InvalidInputError(f"{where}: field '{field}' is missing")
    if not isinstance(row["id"], str | int) or isinstance(row["id"], bool):
        raise InvalidInputError(f"{where}: field 'id' must be a string or an integer")
    if not isinstance(row["question"], str) or not row["question"].strip():
        raise InvalidInputError(f"{where}: field 'question' must be a non-empty string")
    choices = row["choices"]
    if not isinstance(choices, list) or len(choices) < 2:
        raise InvalidInputError(f"{where}: field 'choices' must be a list of at least two strings")
    if not all(isinstance(c, str) and c.strip() for c in choices):
        raise InvalidInputError(f"{where}: field 'choices' must hold only non-empty strings")
    answer = _answer_index(row["answer"], len(choices), where)
    return MCQuestion(str(row["id"]), row["question"], tuple(choices), answer)


def load_mcq(path: Path) -> list[MCQuestion]:
    """The questions of a JSONL file; a bad line is an InvalidInputError naming the file, line and field."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInputError(f"{path}: cannot read it as UTF-8 text ({exc})") from exc
    questions, seen = [], set()
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"{where}: not valid JSON ({exc.msg})") from exc
        question = _question(row, where)
        if question.id in seen:
            raise InvalidInputError(f"{where}: field 'id' repeats {question.id!r}")
        seen.add(question.id)
        questions.append(question)
    if not questions:
        raise InvalidInputError(f"{path}: no questions (the file is empty)")
    return questions


def context_of(question: str) -> str:
    return f"Question: {question}\nAnswer:"


@torch.inference_mode()
def score_question(model: Transformer, tokenizer, item: MCQuestion) -> MCResult:
    """Summed log-likelihood of each option's tokens after the context, all options in one batch."""
    context = tokenizer.encode(context_of(item.question))
    options = [tokenizer.encode(f" {choice}") for choice in item.choices]
    rows = [context + option for option in options]
    width = max(map(len, rows))
    # Right padding: a causal model's logits at real positions never see the padding after them.
    batch = torch.tensor([row + [0] * (width - len(row)) for row in rows])
    logprobs = model(batch).float().log_softmax(-1)
    sums = []
    for row, (ids, option) in enumerate(zip(rows, options, strict=True)):
        at = torch.arange(len(context) - 1, len(ids) - 1)
        sums.append(logprobs[row, at, torch.tensor(option)].sum().item())
    sizes = tuple(len(f" {choice}".encode()) for choice in item.choices)
    return MCResult(item.id, item.answer, tuple(sums), sizes)


def accuracy(results: list[MCResult]) -> dict:
    """acc and acc_norm (as fractions) over ``results``, with the count."""
    n = len(results)
    return {
        "questions": n,
        "acc": sum(r.picked == r.answer for r in results) / n if n else float("nan"),
        "acc_norm": sum(r.picked_norm == r.answer for r in results) / n if n else float("nan"),
    }
