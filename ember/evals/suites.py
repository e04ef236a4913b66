"""The answers, agent and retrieval suites end to end: check the inputs, open (or resume) the run folder,
score every item with a progress bar, write the summary. Commands and `ember eval all` call these."""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ember.evals.agent_suite import AgentContext, pass_hat, run_task, sample_id
from ember.evals.answers_suite import AnswersContext, answer_item
from ember.evals.citation_support import support_scorer
from ember.evals.corpus_collection import document_keys, ingest_corpus
from ember.evals.datasets import load_agent_tasks, load_qa
from ember.evals.item_runner import run_items
from ember.evals.judge.judge import JudgeSpec, check_rubric
from ember.evals.judge.prompts import PROMPT_VERSION
from ember.evals.judge.verdicts import SCALE
from ember.evals.progress import progress_bar
from ember.evals.run_config import system_config
from ember.evals.runs import RunFolder, check_resumed, open_run
from ember.evals.suite_metrics import RETRIEVAL_COLUMNS, summarize

if TYPE_CHECKING:
    from ember.platform.service import EmberService

DEFAULT_MAX_TOKENS = 96
SAMPLED_TEMPERATURE = 0.7  # pass^k needs k different samples


def prepare_collection(service: EmberService, collection: str, corpus: Path | None) -> None:
    """Ingest ``corpus`` into the collection when given; else the collection must exist."""
    if corpus is not None:
        ingest_corpus(service, corpus, collection, service.settings.home / "eval-corpora" / collection)
    service.get_collection(collection)  # NotFoundError names an unknown collection


def run_answers(
    service: EmberService,
    qa_path: Path,
    collection: str,
    runs_dir: Path,
    corpus: Path | None = None,
    concurrency: int = 1,
    resume: Path | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    limit: int | None = None,
    judge: JudgeSpec | None = None,
    judge_rubric: str = SCALE,
    judge_concurrency: int | None = None,
) -> RunFolder:
    """With ``judge``, each answer is also graded against its gold answer on ``judge_rubric``, at most
    ``judge_concurrency`` verdicts in flight (default: ``concurrency``) beside the questions in flight."""
    items = load_qa(qa_path, limit)  # bad input fails here, before anything is written
    grader = judge.build(lambda: service) if judge is not None else None
    check_rubric(judge_rubric)
    verdicts = judge_concurrency or concurrency
    prepare_collection(service, collection, corpus)
    scorer = support_scorer(service.settings.reranker_path())
    config = system_config(service, collection)
    ctx = AnswersContext(
        service,
        collection,
        scorer,
        config["context_depth"],
        document_keys(service, collection),
        {"max_tokens": max_tokens},
        threading.Semaphore(concurrency),
        threading.Semaphore(verdicts),
        grader,
        judge_rubric,
    )
    config |= {
        "dataset": str(qa_path),
        "max_tokens": max_tokens,
        "concurrency": concurrency,
        "limit": limit,
        "support_scorer": scorer.name,
    }
    extra = {"support_scorer": scorer.name}
    if grader is not None:
        extra |= {"judge": grader.name, "judge_rubric": judge_rubric}
        config |= extra | {
            "judge_prompt_version": PROMPT_VERSION,
            "judge_max_tokens": grader.max_tokens,
            "judge_concurrency": verdicts,
        }
    run = open_run(runs_dir, "answers", config, resume)
    check_resumed(run, config, ("judge", "judge_rubric", "judge_prompt_version"))
    with progress_bar(f"answers ({collection})", len(items)) as advance:
        threads = concurrency + (verdicts if grader else 0)  # answering and judging overlap
        records = run_items([(i.id, i) for i in items], lambda i: answer_item(ctx, i), run, threads, advance)
    run.write_summary(summarize("answers", records, extra))
    return run


def run_agent(
    service: EmberService,
    tasks_path: Path,
    collection: str,
    runs_dir: Path,
    samples: int = 1,
    temperature: float | None = None,
    seed: int = 0,
    concurrency: int = 1,
    resume: Path | None = None,
    max_tokens: int = DEFAULT_MAX_TOKENS,
    limit: int | None = None,
) -> RunFolder:
    from ember.platform.errors import InvalidInputError

    tasks = load_agent_tasks(tasks_path, limit)
    if samples < 1:
        raise InvalidInputError(f"--samples must be at least 1, got {samples}")
    temperature = (SAMPLED_TEMPERATURE if samples > 1 else 0.0) if temperature is None else temperature
    if samples > 1 and temperature <= 0:
        raise InvalidInputError("pass^k over several samples needs --temperature above 0")
    service.get_collection(collection)
    sampling: dict[str, Any] = {"max_tokens": max_tokens, "temperature": temperature}
    ctx = AgentContext(service, collection, document_keys(service, collection), sampling)
    config = system_config(service, collection) | {
        "dataset": str(tasks_path),
        "samples": samples,
        "temperature": temperature,
        "seed": seed,
        "max_tokens": max_tokens,
        "concurrency": concurrency,
        "limit": limit,
    }
    run = open_run(runs_dir, "agent", config, resume)
    units = [(sample_id(t.id, s), (t, s)) for t in tasks for s in range(samples)]
    with progress_bar(f"agent ({collection}, {samples} sample(s))", len(units)) as advance:
        records = run_items(units, lambda unit: run_task(ctx, *unit, seed), run, concurrency, advance)
    run.write_summary(
        summarize("agent", records, {"tasks": len(tasks), "samples": samples, **pass_hat(records)})
    )
    return run


def run_retrieval(
    dataset_dir: Path,
    runs_dir: Path,
    corpus: Path | None = None,
    modes: tuple[str, ...] = ("bm25", "dense", "hybrid"),
    reranker: str | None = None,
    embedding_model: str | None = None,
) -> RunFolder:
    """The BEIR retrieval eval as a run folder: one record per query, one field per mode and measure."""
    from ember.evals.beir import load_beir
    from ember.evals.metrics import METRICS, ranked
    from ember.evals.retrieval_runner import run_retrieval_eval
    from ember.retrieval.embedder import DEFAULT_EMBEDDING_MODEL

    dataset = load_beir(dataset_dir, corpus)
    modes = tuple(m for m in modes if m != "hybrid+rerank" or reranker)
    embedding_model = embedding_model or DEFAULT_EMBEDDING_MODEL
    # Sets sharing a corpus share its index, kept under the runs folder (not a collection's index).
    corpus_file = Path(corpus) if corpus else Path(dataset_dir) / "corpus.jsonl"
    key = hashlib.sha256(corpus_file.read_bytes() + embedding_model.encode()).hexdigest()[:16]
    index_dir = runs_dir / "retrieval-indexes" / key
    index_dir.parent.mkdir(parents=True, exist_ok=True)
    with progress_bar(f"retrieval ({dataset.name})", len(dataset.queries) * len(modes)) as advance:
        report = run_retrieval_eval(
            dataset, modes, reranker, embedding_model, index_dir=index_dir, on_query=lambda _: advance()
        )
    config = {"dataset": str(dataset_dir), "modes": list(modes), **report.config}
    run = open_run(runs_dir, "retrieval", config)
    for query_id, judged in dataset.qrels.items():
        record: dict[str, Any] = {"id": query_id}
        for result in report.results:
            ranking = ranked(result.run.get(query_id, {}))
            for name in RETRIEVAL_COLUMNS:
                metric, k = METRICS[name]
                record[f"{result.mode} {name}"] = metric(ranking, judged, k)
        run.append_item(record)
    latency = {f"{r.mode} p50 ms": round(r.latency_ms_p50, 1) for r in report.results}
    run.write_summary(summarize("retrieval", run.read_items(), {"dataset": dataset.name, **latency}))
    return run
