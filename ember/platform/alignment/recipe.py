"""The `ember align rag` recipe: synthesise grounded data from a collection, SFT (LoRA) on it, DPO on its
pairs, install the result as a new model, and compare it with the starting model on held-out documents.

Everything comes from the collection and the local model. Each stage reports progress through
``progress(stage, done, total, metrics)``; the data and the metrics stay in ``home/runs/<name>/``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from ember.agents.focus import focus_passages
from ember.platform.alignment.budget import AlignBudget
from ember.platform.alignment.own_samples import reject_own_samples
from ember.platform.alignment.synth import IDK, Synthesized, synthesize
from ember.platform.errors import EmberError
from ember.retrieval.types import Hit, location_of

Progress = Callable[[str, int, int, dict], None]
ANSWER_ROOM = 96  # tokens a synthesised prompt leaves for its answer within the training sequence


@dataclass
class AlignReport:
    model: str
    run_dir: Path
    counts: dict[str, int]
    sft_loss: tuple[float, float]
    dpo_accuracy: tuple[float, float]
    before: dict[str, float] = field(default_factory=dict)  # held-out checks of the starting model
    after: dict[str, float] = field(default_factory=dict)  # and of the aligned one
    seconds: dict[str, float] = field(default_factory=dict)


def _passages(service, collection: str) -> list[Hit]:
    index = service.index_store.get(collection)
    if not index.exists:
        raise EmberError(f"collection '{collection}' has no index; run `ember index rebuild -c {collection}`")
    return [
        Hit(r.chunk_id, r.document_id, r.title, location_of(r), r.text, 0.0)
        for r in sorted(index.records.values(), key=lambda r: r.chunk_id)
    ]


def heldout_checks(chat, items: list[dict], max_tokens: int = 96) -> dict[str, float]:
    """Share of answers citing the gold passage, stating the gold number, and saying "I don't know"."""
    cited = numbers = idk = 0
    numbered = [item for item in items if item["number"]]
    for item in items:
        text = chat.chat(item["messages"], max_tokens=max_tokens, temperature=0.0).text
        cited += f"[{item['citation']}]" in text
        numbers += (
            bool(item["number"])
            and re.search(rf"(?<![\d.]){re.escape(item['number'])}(?![\d])", text) is not None
        )
        idk += IDK.rstrip(".") in text
    return {
        "cites_gold": cited / max(1, len(items)),
        "number_match": numbers / max(1, len(numbered)),
        "says_idk": idk / max(1, len(items)),
    }


def align_rag(
    service,
    collection: str,
    name: str,
    base: str | None = None,
    budget: AlignBudget | None = None,
    progress: Progress | None = None,
) -> AlignReport:
    """Run the whole recipe; the aligned model is installed as ``name`` (base + LoRA adapter)."""
    from ember.llm.inference.chat import ChatModel
    from ember.llm.inference.checkpoint import CONFIG_FILE, load_tokenizer
    from ember.llm.inference.config import ModelConfig
    from ember.llm.training.dpo_data import load_pairs
    from ember.llm.training.dpo_train import train_dpo
    from ember.llm.training.lora import LoraSpec
    from ember.llm.training.sft import train_sft
    from ember.llm.training.sft_data import load_sft
    from ember.llm.training.tune import finetune_config, starting_model
    from ember.llm.training.tuned_models import install_tuned

    budget = replace(budget or AlignBudget())
    if budget.rejections_from not in ("base", "sft"):
        raise EmberError(f"rejections_from must be 'base' or 'sft', not {budget.rejections_from!r}")
    if budget.passages is None:  # prompts as the RAG graph builds them
        budget.passages = service.settings.rag_passages
    if budget.focus_sentences is None:
        budget.focus_sentences = service.settings.rag_focus_sentences
    report = progress or (lambda stage, done, total, metrics: None)
    run_dir = service.settings.home / "runs" / name
    run_dir.mkdir(parents=True, exist_ok=True)
    base_dir = service.model_path(base)
    # A base with a shorter window than the budget's sequence trains within its window.
    budget.seq_len = min(budget.seq_len, ModelConfig.load(base_dir / CONFIG_FILE).max_seq_len)
    seconds: dict[str, float] = {}

    service.collection_id(collection)  # exists, else NotFoundError
    tokenizer = load_tokenizer(base_dir)
    made_by = _made_by(budget, collection, base_dir)
    data = _saved_data(run_dir, made_by, budget.dpo_steps * budget.batch_size)
    if data is None:
        data = _new_data(service, collection, tokenizer, budget, report, seconds)
        _save_data(run_dir, made_by, data)
    else:
        report("synthesis", 1, 1, {**data.counts, "reused": str(run_dir)})

    model, _, spec, root = starting_model(
        base_dir, LoraSpec(rank=budget.lora_rank, alpha=2 * budget.lora_rank)
    )
    started = time.perf_counter()
    sft = train_sft(
        model,
        tokenizer,
        load_sft(run_dir / "sft.jsonl", tokenizer, budget.seq_len),
        finetune_config(
            budget.sft_steps, budget.batch_size, budget.sft_lr, budget.seq_len, budget.seed, dtype="auto"
        ),
        run_dir / "sft",
        lambda record: report("sft", record["step"], budget.sft_steps, record),
    )
    seconds["sft"] = time.perf_counter() - started
    pairs_file = _own_sample_pairs(
        run_dir, made_by, base_dir, model, tokenizer, data, budget, report, seconds
    )

    started = time.perf_counter()
    dpo = train_dpo(
        model,
        tokenizer,
        load_pairs(pairs_file, tokenizer, budget.seq_len),
        finetune_config(
            budget.dpo_steps, budget.batch_size, budget.dpo_lr, budget.seq_len, budget.seed, dtype="auto"
        ),
        run_dir / "dpo",
        budget.beta,
        lambda record: report("dpo", record["step"], budget.dpo_steps, record),
    )
    seconds["dpo"] = time.perf_counter() - started
    target = install_tuned(model, tokenizer, service.settings.models_dir / name, root, spec)

    started = time.perf_counter()
    items = data.heldout[: budget.eval_items]
    checks = {}
    for label, directory in (("before", base_dir), ("after", target)):
        checks[label] = heldout_checks(ChatModel.load(directory), items)
        report("evaluation", len(checks), 2, checks[label])
    seconds["evaluation"] = time.perf_counter() - started
    result = AlignReport(
        model=name,
        run_dir=run_dir,
        counts=data.counts,
        sft_loss=_ends(sft, "loss"),
        dpo_accuracy=_ends(dpo, "rewards/accuracies"),
        before=checks["before"],
        after=checks["after"],
        seconds=seconds,
    )
    (run_dir / "report.json").write_text(json.dumps({**result.__dict__, "run_dir": str(run_dir)}, indent=1))
    return result


def _ends(records: list[dict], key: str) -> tuple[float, float]:
    """The mean of ``key`` over the first and the last tenth of the steps: one step's value swings with
    what its rows hold (a replayed passage's loss is far above an answer's)."""
    tenth = max(1, len(records) // 10)
    return tuple(sum(r[key] for r in part) / len(part) for part in (records[:tenth], records[-tenth:]))


def _new_data(service, collection: str, tokenizer, budget: AlignBudget, report, seconds):
    """Synthesise the training data: SFT rows, the pairs one epoch of DPO uses, held-out questions."""
    from ember.llm.training.sft_data import render_conversation

    started = time.perf_counter()

    def search(question: str, k: int) -> list[Hit]:
        return service.search(question, [collection], k=k, mode="hybrid").hits

    def fits(messages: list[dict], tools: list[dict] | None) -> bool:
        prompt, _ = render_conversation(tokenizer, messages, tools, generation=True)
        return len(prompt) + ANSWER_ROOM <= budget.seq_len

    def focus(question: str, hits: list[Hit]) -> list[Hit]:
        return focus_passages(question, hits, budget.focus_sentences, service.sentence_similarity)

    data = synthesize(
        _passages(service, collection),
        search,
        collection,
        budget.questions,
        budget.passages,
        budget.heldout_share,
        replay_share=budget.replay_share,
        seed=budget.seed,
        fits=fits,
        focus=focus if budget.focus_sentences else None,
    )
    if not data.sft:
        raise EmberError(
            f"collection '{collection}' gave no training questions: it needs sentences with facts"
        )
    report("synthesis", 1, 1, data.counts)
    seconds["synthesis"] = time.perf_counter() - started

    data.dpo = data.dpo[: budget.dpo_steps * budget.batch_size]  # what one epoch of DPO uses
    return data


def _own_sample_pairs(
    run_dir: Path, made_by: dict, base_dir: Path, model, tokenizer, data, budget, report, seconds
) -> Path:
    """The DPO pairs with a model's own failing samples as their rejected sides: the SFT model's
    (``budget.rejections_from`` "sft", on-policy: what the model DPO trains really writes) or the
    starting model's ("base"). Saved, and reused by a rerun of the same run."""
    import copy

    from ember.llm.inference.chat import ChatModel
    from ember.llm.inference.engine import Engine
    from ember.llm.training.lora import merge_lora

    pairs_file, marker = run_dir / "dpo-own.jsonl", run_dir / "dpo-own.json"
    sampled_by = {**made_by, "rejections_from": budget.rejections_from}
    if budget.rejections_from == "sft":
        sampled_by |= {key: getattr(budget, key) for key in _SFT_BUDGET}
    saved = json.loads(marker.read_text()) if marker.is_file() else {}
    if saved.get("budget") == sampled_by:
        data.counts |= saved["counts"]
        return pairs_file
    started = time.perf_counter()
    pairs = copy.deepcopy(data.dpo)
    if budget.rejections_from == "sft":
        sampler = ChatModel(Engine(merge_lora(copy.deepcopy(model)).eval().requires_grad_(False), tokenizer))
    else:
        sampler = ChatModel.load(base_dir)
    counts = reject_own_samples(
        sampler,
        pairs,
        seed=budget.seed,
        progress=lambda done, total: report("own samples", done, total, {}),
    )
    del sampler
    pairs_file.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in pairs))
    marker.write_text(json.dumps({"budget": sampled_by, "counts": counts}))
    data.counts |= counts
    seconds["own samples"] = time.perf_counter() - started
    return pairs_file


_DATA_FILES = ("sft", "dpo", "heldout")
_DATA_BUDGET = (
    "questions",
    "seq_len",
    "passages",
    "focus_sentences",
    "heldout_share",
    "replay_share",
    "seed",
)
_SFT_BUDGET = ("sft_steps", "batch_size", "lora_rank", "sft_lr")  # the model whose samples DPO rejects


def _made_by(budget: AlignBudget, collection: str, base_dir: Path) -> dict:
    """What the saved data depends on: the synthesis budget, the collection, and the base."""
    return {
        **{key: getattr(budget, key) for key in _DATA_BUDGET},
        "collection": collection,
        "base": str(base_dir),
    }


def _save_data(run_dir: Path, made_by: dict, data: Synthesized) -> None:
    """The data files, then ``data.json`` last: a stopped run reuses them (sampling is slow on a CPU)."""
    for name in _DATA_FILES:
        rows = getattr(data, name)
        (run_dir / f"{name}.jsonl").write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)
        )
    (run_dir / "data.json").write_text(json.dumps({"budget": made_by, "counts": data.counts}, indent=1))


def _saved_data(run_dir: Path, made_by: dict, wanted_dpo: int) -> Synthesized | None:
    """The data a stopped run saved with the same ``made_by``, with at least ``wanted_dpo`` pairs, or None."""
    marker = run_dir / "data.json"
    if not marker.is_file():
        return None
    saved = json.loads(marker.read_text())
    if saved["budget"] != made_by:
        return None
    rows = {
        name: [json.loads(line) for line in (run_dir / f"{name}.jsonl").read_text().splitlines()]
        for name in _DATA_FILES
    }
    if len(rows["dpo"]) < wanted_dpo:  # more DPO than was sampled for
        return None
    rows["dpo"] = rows["dpo"][:wanted_dpo]
    return Synthesized(**rows, counts=saved["counts"])
