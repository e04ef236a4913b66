"""How far to trust the judge: its verdicts against labels known to be right.

Labels come from items whose correctness is decided exactly — numeric answers checked by the numeric
matcher (``answer_scoring.numeric_match``): the answers of an answers run, or a QA file's gold answers
next to copies with the number changed — and from a human labels file. The report gives the judge's
agreement with the labels, Cohen's kappa, the share of unparsed verdicts, and, for every question with
a right and a wrong answer, the pairwise verdict in both orders: swap consistency and how often the
right answer won.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from ember.evals.answer_scoring import numeric_match, quantities
from ember.evals.datasets import Line, jsonl_rows, load_qa, unique_ids
from ember.evals.item_runner import run_items
from ember.evals.judge.judge import Judge
from ember.evals.judge.prompts import PROMPT_VERSION
from ember.evals.judge.run_judging import ANSWER, QUESTION, REFERENCE, grade_fields, pair_fields
from ember.evals.judge.verdicts import PASS_FAIL
from ember.evals.kappa import cohen_kappa
from ember.evals.runs import RunFolder, open_run
from ember.platform.errors import InvalidInputError


@dataclass(frozen=True)
class LabelledAnswer:
    id: str
    question_id: str  # answers to one question are paired for the swap test
    question: str
    reference: str
    answer: str
    label: bool  # the answer is right
    source: str  # "numeric" (an answers run), "perturbed" (a QA file) or "human"


def labels_from_answers_run(path: Path) -> list[LabelledAnswer]:
    """The numeric answers of an answers run, labelled by the numeric matcher."""
    if not (Path(path) / "config.json").is_file():
        raise InvalidInputError(f"{path}: not a run folder (no config.json)")
    labelled = []
    for item in RunFolder(Path(path)).read_items():
        if item.get("answer_type") == "numeric" and QUESTION in item and ANSWER in item and REFERENCE in item:
            gold = str(item[REFERENCE])
            right = numeric_match(item[ANSWER], item[REFERENCE])
            labelled.append(
                LabelledAnswer(
                    f"{item['id']}:run", str(item["id"]), item[QUESTION], gold, item[ANSWER], right, "numeric"
                )
            )
    return labelled


def _changed_number(gold: str) -> str | None:
    """``gold`` with its first number replaced by a clearly different one (x3 + 7), or None."""
    match = re.search(r"\d+(?:,\d{3})*(?:\.\d+)?", gold)
    if match is None:
        return None
    value = float(match.group().replace(",", ""))
    new = value * 3 + 7
    text = f"{new:.{len(match.group().split('.')[1])}f}" if "." in match.group() else f"{int(new):,}"
    return gold[: match.start()] + text + gold[match.end() :]


def labels_from_qa(path: Path, limit: int | None = None) -> list[LabelledAnswer]:
    """For each numeric QA item: its gold answer (right) and the gold with the number changed (wrong),
    both labels confirmed by the numeric matcher (an item it cannot decide is left out)."""
    labelled = []
    for item in load_qa(path):
        gold = str(item.answer)
        wrong = _changed_number(gold) if item.answer_type == "numeric" and quantities(gold) else None
        if wrong is None or not numeric_match(gold, item.answer) or numeric_match(wrong, item.answer):
            continue
        labelled += [
            LabelledAnswer(f"{item.id}:gold", item.id, item.question, gold, gold, True, "perturbed"),
            LabelledAnswer(f"{item.id}:changed", item.id, item.question, gold, wrong, False, "perturbed"),
        ]
        if limit and len(labelled) >= 2 * limit:
            break
    return labelled


_LABEL_WORDS = {True: True, False: False, "pass": True, "fail": False, "correct": True, "incorrect": False}


def labels_from_file(path: Path) -> list[LabelledAnswer]:
    """Human labels: JSONL of {id, question, reference, answer, label: true/false or "pass"/"fail"}."""
    labelled = []
    for number, row in jsonl_rows(path):
        line = Line(path, number, row)
        fields = ("question", "reference", "answer")
        text = {f: str(line.get(f, (str, int), label="a string")) for f in fields}
        label = row.get("label")
        key = label.lower() if isinstance(label, str) else label
        if key not in _LABEL_WORDS:
            raise line.fail("label", f"must be true/false or pass/fail, got {label!r}")
        answer_id = line.id()
        question_id = str(row.get("question_id", answer_id))
        label = _LABEL_WORDS[key]
        labelled.append(LabelledAnswer(answer_id, question_id, **text, label=label, source="human"))
    return unique_ids(path, labelled)


def _pairs(labelled: list[LabelledAnswer]) -> list[tuple[LabelledAnswer, LabelledAnswer]]:
    """(right, wrong): the first right and the first wrong answer of every question that has both."""
    by_question: dict[str, dict[bool, LabelledAnswer]] = {}
    for item in labelled:
        by_question.setdefault(item.question_id, {}).setdefault(item.label, item)
    return [(answers[True], answers[False]) for answers in by_question.values() if len(answers) == 2]


def summarize_calibration(grades: list[dict], pairs: list[dict]) -> dict:
    """Agreement and kappa over parsed grades; swap consistency and right-answer wins over parsed pairs."""
    parsed = [g for g in grades if g["judge_pass"] is not None]
    summary: dict = {
        "items": len(grades),
        "graded": len(parsed),  # agreement and kappa are over these
        "unparsed_share": 1 - len(parsed) / len(grades) if grades else None,
        "label_pass_rate": sum(g["label"] for g in grades) / len(grades) if grades else None,
        "judge_pass_rate": sum(g["judge_pass"] for g in parsed) / len(parsed) if parsed else None,
        "agreement": sum(g["judge_pass"] == g["label"] for g in parsed) / len(parsed) if parsed else None,
        "kappa": cohen_kappa([g["label"] for g in parsed], [g["judge_pass"] for g in parsed])
        if parsed
        else None,
        "by_source": {
            s: sum(g["source"] == s for g in grades) for s in sorted({g["source"] for g in grades})
        },
    }
    judged = [p for p in pairs if p["outcome"] != "unparsed"]
    summary |= {
        "pairs": len(pairs),
        "pairs_judged": len(judged),
        "pair_unparsed_share": 1 - len(judged) / len(pairs) if pairs else None,
        "swap_consistency": sum(bool(p["consistent"]) for p in judged) / len(judged) if judged else None,
        # "a" is the right answer in every calibration pair; a flip is a tie, not a win.
        "right_answer_wins": sum(p["outcome"] == "a" for p in judged) / len(judged) if judged else None,
    }
    return summary


def calibrate(
    judge: Judge,
    labelled: list[LabelledAnswer],
    runs_dir: Path,
    concurrency: int = 1,
    resume: Path | None = None,
    on_done: Callable[[], None] | None = None,
) -> dict:
    """Grade every labelled answer (pass/fail) and compare every right/wrong pair in both orders."""
    if not labelled:
        raise InvalidInputError("no labelled answers to calibrate on")
    pairs = _pairs(labelled)
    config = {"judge": judge.name, "prompt_version": PROMPT_VERSION, "rubric": PASS_FAIL}
    run = open_run(runs_dir, "judge-calibration", config, resume)

    def grade(item: LabelledAnswer) -> dict:
        verdict = judge.grade(item.question, item.answer, item.reference, PASS_FAIL)
        fields = asdict(item)
        fields["answer_id"] = fields.pop("id")  # the record's id is the run's "grade:<id>"
        return {"kind": "grade", **fields, **grade_fields(verdict, PASS_FAIL)}

    def compare(pair: tuple[LabelledAnswer, LabelledAnswer]) -> dict:
        right, wrong = pair
        verdict = judge.compare(right.question, right.answer, wrong.answer, right.reference)
        return {"kind": "pair", "right": right.id, "wrong": wrong.id, **pair_fields(verdict)}

    grades = run_items([(f"grade:{i.id}", i) for i in labelled], grade, run, concurrency, on_done)
    compared = run_items(
        [(f"pair:{r.question_id}", (r, w)) for r, w in pairs], compare, run, concurrency, on_done
    )
    summary = {
        "suite": "judge-calibration",
        "judge": judge.name,
        **summarize_calibration(grades, compared),
        "run_dir": str(run.path),
    }
    run.write_summary(summary)
    return summary


def calibration_steps(labelled: list[LabelledAnswer]) -> int:
    """How many judgements ``calibrate`` makes (for a progress bar)."""
    return len(labelled) + len(_pairs(labelled))
