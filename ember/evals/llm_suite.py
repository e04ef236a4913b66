"""`ember eval llm`: the language model itself, without retrieval — bits per byte and multiple choice.

``run_llm_suite`` is the one entry point (the command and ``ember eval all`` call it). It scores
bits per byte on text files or a collection's chunks and/or accuracy on a multiple-choice JSONL, for
one model in one precision, writing each scored item to a run folder as it goes (a resumed run skips
the items already there) and the summary last.

Bits per byte is ``ember.llm.inference.evaluate.bits_per_byte``, pooled over texts by the bytes each
one scores. A quantized model is scored through the decode path (one token per step, the way it
generates), an fp32 one in windows at once; the two compute the same quantity.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from ember.evals.llm_suite_model import load_scored_model
from ember.evals.llm_suite_texts import ScoredText, texts_from_collection, texts_from_files
from ember.evals.multiple_choice import MCResult, accuracy, load_mcq, score_question
from ember.evals.runs import check_resumed, default_runs_dir, open_run
from ember.llm.inference.evaluate import bits_per_byte
from ember.platform.errors import InvalidInputError

if TYPE_CHECKING:
    from ember.platform.service import EmberService

BUILTIN_MCQ = Path(__file__).parent / "mcq" / "ember_facts.jsonl"  # facts about Ember, from its docs
MCQ_PROMPT = "lm-eval-harness: 'Question: {q}\\nAnswer:' + ' {choice}'"
BPB_WINDOW = 1024

Progress = Callable[[str, int, int], None]  # (task, done, total), called as each item finishes


def run_llm_suite(
    service: EmberService,
    texts: list[str] | None = None,
    collection: str | None = None,
    mcq: Path | None = None,
    model: str | None = None,
    quantize: str | None = None,
    runs_dir: Path | None = None,
    resume: Path | None = None,
    progress: Progress | None = None,
) -> dict:
    """Score ``model`` (default: the configured llm_model) and return the summary (also in summary.json).

    texts: files, folders or globs for bits per byte; collection: a collection's chunks for it too;
    mcq: a multiple-choice JSONL (``BUILTIN_MCQ`` is Ember's own); quantize: None keeps the checkpoint
    as stored, "none" / "int8" / "int4" name the precision to score; runs_dir: default EMBER_HOME/runs;
    resume: an earlier run folder of this suite, whose scored items are kept.

    Summary keys: model, quantization, run_dir, and when measured bpb, bpb_texts, bpb_bytes,
    mcq_questions, mcq_acc, mcq_acc_norm.
    """
    if not texts and not collection and mcq is None:
        raise InvalidInputError("nothing to evaluate: give text files, --collection or --mcq")
    sources = (texts_from_files(texts) if texts else []) + (
        texts_from_collection(service, collection) if collection else []
    )
    questions = load_mcq(mcq) if mcq is not None else []
    scored = load_scored_model(service.model_path(model), quantize)
    config = {
        "model": scored.name,
        "model_path": str(scored.path),
        "quantization": scored.quantization,
        "texts": list(texts or []),
        "collection": collection,
        "mcq": str(mcq) if mcq is not None else None,
        "mcq_prompt": MCQ_PROMPT,
        "bpb_window": BPB_WINDOW,
        "bpb_path": "decode steps" if scored.scores_by_steps else "windows at once",
    }
    run = open_run(runs_dir or default_runs_dir(), "llm", config, resume)
    check_resumed(run, config, ("model", "quantization", "mcq_prompt", "bpb_window"))
    done = run.done_ids()
    report = progress or (lambda _task, _done, _total: None)
    for number, source in enumerate(sources, 1):
        if f"bpb:{source.name}" not in done:
            run.append_item(_bpb_item(scored, source))
        report("bits per byte", number, len(sources))
    for number, question in enumerate(questions, 1):
        if f"mcq:{question.id}" not in done:
            result = score_question(scored.model, scored.tokenizer, question)
            run.append_item({**result.as_item(), "id": f"mcq:{question.id}", "kind": "mcq"})
        report("multiple choice", number, len(questions))
    summary = {
        "suite": "llm",
        "model": scored.name,
        "quantization": scored.quantization,
        **summarize_llm_items(run.read_items()),
        "run_dir": str(run.path),
    }
    run.write_summary(summary)
    return summary


def _bpb_item(scored, source: ScoredText) -> dict:  # noqa: ANN001 - a ScoredModel
    bpb = bits_per_byte(
        scored.model, scored.tokenizer, source.text, window=BPB_WINDOW, step_by_step=scored.scores_by_steps
    )
    ids = scored.tokenizer.encode(source.text)
    # The bytes bits_per_byte divides by: every token's but the first one's (it is not predicted).
    scored_bytes = len(source.text.encode("utf-8")) - len(scored.tokenizer.decode_bytes(ids[:1]))
    return {"id": f"bpb:{source.name}", "kind": "bpb", "bpb": bpb, "bytes": scored_bytes, "tokens": len(ids)}


def summarize_llm_items(items: list[dict]) -> dict:
    """The pooled bits per byte (total bits over total bytes) and MCQ accuracies of a run's items."""
    summary: dict = {}
    bpb = [i for i in items if i.get("kind") == "bpb"]
    if bpb:
        total_bytes = sum(i["bytes"] for i in bpb)
        summary |= {
            "bpb": sum(i["bpb"] * i["bytes"] for i in bpb) / total_bytes,
            "bpb_texts": len(bpb),
            "bpb_bytes": total_bytes,
        }
    mcq = [i for i in items if i.get("kind") == "mcq"]
    if mcq:
        results = [
            MCResult(i["id"], i["answer"], tuple(i["loglikelihoods"]), tuple(i["option_bytes"])) for i in mcq
        ]
        scores = accuracy(results)
        summary |= {
            "mcq_questions": scores["questions"],
            "mcq_acc": scores["acc"],
            "mcq_acc_norm": scores["acc_norm"],
        }
    return summary
