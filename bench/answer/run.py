"""bench/answer: grounded answers and the agent with the default local model on the shared eval sets.

    python bench/answer/run.py --corpus ../shared/evals/retrieval/corpus.jsonl \
        --factoid ../shared/evals/qa/factoid.jsonl --tasks ../shared/evals/agent/tasks.jsonl \
        --model ~/.local/share/ember/models/smollm2-135m-instruct --factoid-limit 20 --task-limit 5

Builds a throwaway Ember home (the corpus ingested as one collection, indexes synced), then asks every
factoid through the RAG graph and every task through the agent (ember.evals.qa, ember.evals.agent_tasks),
and prints: time to first token and total latency, exact/numeric match, citation validity (share of cited
passages that contain the gold answer), how often citations had to be repaired, "I don't know" rate, the
top dense score of each question (the relevance threshold's calibration), and for the agent: task
success, tool-call rate, fallback rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ember.evals.agent_tasks import load_agent_tasks, run_agent_task, summarize_agent_tasks  # noqa: E402
from ember.evals.corpus_collection import ingest_corpus  # noqa: E402
from ember.evals.qa import load_factoids, run_factoid, summarize_factoids  # noqa: E402
from ember.platform.service import EmberService  # noqa: E402
from ember.platform.settings import Settings  # noqa: E402

COLLECTION = "bench"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--corpus", type=Path, required=True)
    parser.add_argument("--factoid", type=Path, required=True)
    parser.add_argument("--tasks", type=Path, required=True)
    parser.add_argument(
        "--model", default="smollm2-135m-instruct", help="model name under EMBER_HOME or path"
    )
    parser.add_argument("--factoid-limit", type=int, default=None)
    parser.add_argument("--task-limit", type=int, default=None)
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--home", type=Path, default=None, help="work dir (default: a temporary one)")
    parser.add_argument("--out", type=Path, default=None, help="write per-question results as JSON")
    args = parser.parse_args()
    for path in (args.corpus, args.factoid, args.tasks):
        if not path.is_file():
            parser.error(f"{path} is not a file")

    console = Console()
    home = args.home or Path(tempfile.mkdtemp(prefix="ember-bench-answer-"))
    started = time.perf_counter()
    service = EmberService(
        Settings(
            home=home,
            database_url=f"sqlite:///{home / 'ember.db'}",
            llm_model=args.model,
            reranker="",
            sync_indexes=True,
        )
    )
    ingest_corpus(service, args.corpus, COLLECTION, home / "corpus")
    console.print(
        f"ingested {service.get_collection(COLLECTION).chunks} chunks in {time.perf_counter() - started:.0f}s"
    )
    service.llm  # noqa: B018 - load the model before timing anything

    factoids = load_factoids(args.factoid, args.factoid_limit)
    records = [
        run_factoid(service, COLLECTION, item, args.max_tokens)
        for item in track(factoids, description="factoids (RAG)", console=console)
    ]
    tasks = load_agent_tasks(args.tasks, args.task_limit)
    task_records = [
        run_agent_task(service, COLLECTION, item, args.max_tokens)
        for item in track(tasks, description="agent tasks", console=console)
    ]

    counts = f"{len(records)} factoids, {len(task_records)} agent tasks"
    table = Table(title=f"bench/answer · {args.model} · {counts}")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name, value in summarize_factoids(records) + summarize_agent_tasks(task_records):
        table.add_row(name, value)
    console.print(table)
    if args.out:
        results = {"factoids": [asdict(r) for r in records], "tasks": [asdict(r) for r in task_records]}
        args.out.write_text(json.dumps(results, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
