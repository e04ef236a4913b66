"""Multiple-choice questions scored by the log-likelihood of each option, as lm-evaluation-harness does.

The context is ``"Question: {question}\\nAnswer:"`` and each option the continuation ``" {choice}"``.
``acc`` picks the option of highest summed log-likelihood; ``acc_norm`` divides each option's sum by
its length in UTF-8 bytes first (the harness's acc_norm), so long options are not penalised for being
long. Both are reported. A question's options are scored in one batched forward pass (for a quantized
model, its prefill path).
"""

from __future__ import annotations

import string
from dataclasses import dataclass
from pathlib import Path

import torch

from ember.evals.datasets import Line, jsonl_rows, unique_ids
from ember.llm.inference.model import Transformer


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


def _answer_index(line: Line, choices: int) -> int:
    value = line.get("answer", (int, str), label="an index or a letter")
    if isinstance(value, str):
        letter = value.strip().upper()
        if len(letter) != 1 or letter not in string.ascii_uppercase:
            raise line.fail("answer", f"must be an index or a letter, got {value!r}")
        value = string.ascii_uppercase.index(letter)
    if not 0 <= value < choices:
        raise line.fail("answer", f"is {value}, outside the {choices} choices")
    return value


def load_mcq(path: Path) -> list[MCQuestion]:
    """The questions of a JSONL file; a bad line is a DatasetError naming the file, line and field."""
    questions = []
    for number, row in jsonl_rows(path):
        line = Line(path, number, row)
        choices = line.get("choices", (list,), label="a list of at least two strings")
        if len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise line.fail("choices", "must be a list of at least two non-empty strings")
        question = line.get("question", (str,), label="a non-empty string")
        questions.append(MCQuestion(line.id(), question, tuple(choices), _answer_index(line, len(choices))))
    return unique_ids(path, questions)


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
