"""bench/answer: grounded answers and the agent with the default local model on the shared eval sets.

    python bench/answer/run.py --corpus ../shared/evals/retrieval/corpus.jsonl \
        --factoid ../shared/evals/qa/factoid.jsonl --tasks ../shared/evals/agent/tasks.jsonl \
        --model ~/.local/share/ember/models/smollm2-135m-instruct --factoid-limit 20 --task-limit 5

Builds a throwaway Ember home (the corpus ingested as one collection, indexes synced), then asks every
factoid through the RAG graph and every task through the agent, and prints: time to first token and total
latency, exact/numeric match, citation validity (share of cited passages that contain the gold answer),
how often citations had to be repaired, "I don't know" rate, the top dense score of each question (the
relevance threshold's calibration), and for the agent: task success, tool-call rate, fallback rate.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.progress import track
from rich.table import Table

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from bench.answer.scoring import answer_match, passage_contains  # noqa: E402

COLLECTION = "bench"


def read_jsonl(path: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit] if limit else rows


def build_service(home: Path, corpus: Path, model: str):  # noqa: ANN201
    from ember.platform.index_sync import IndexSync
    from ember.platform.service import EmberService
    from ember.platform.settings import Settings

    service = EmberService(
        Settings(home=home, database_url=f"sqlite:///{home / 'ember.db'}", llm_model=model, reranker="")
    )
    service.ingest_hook = IndexSync(service.db, service.index_store)
    docs = home / "corpus"
    docs.mkdir(parents=True, exist_ok=True)
    for number, row in enumerate(read_jsonl(corpus, None)):
        (docs / f"{number:05d}.md").write_text(f"# {row['title']}\n\n{row['text']}\n", encoding="utf-8")
    service.ingest(str(docs), COLLECTION)
    return service


def timed_ask(service, question: str, agent: bool, max_tokens: int) -> tuple[object, float, float]:  # noqa: ANN001
    start, first = time.perf_counter(), None
    for event in service.ask_stream(question, COLLECTION, agent=agent, max_tokens=max_tokens):
        if event.kind == "token" and first is None:
            first = time.perf_counter() - start
        if event.kind == "done":
            answer = event.answer
    total = time.perf_counter() - start
    return answer, first if first is not None else total, total


def chunk_texts(service, ids: list[int]) -> dict[int, str]:  # noqa: ANN001
    from ember.platform.index_sync import chunk_records

    return {r.chunk_id: r.text for r in chunk_records(service.db, ids)}


def top_dense(service, question: str) -> float:  # noqa: ANN001
    hits = service.search(question, [COLLECTION], k=1, mode="dense").hits
    return hits[0].score if hits else 0.0


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
    service = build_service(home, args.corpus, args.model)
    console.print(
        f"ingested {service.get_collection(COLLECTION).chunks} chunks in {time.perf_counter() - started:.0f}s"
    )
    service.llm  # noqa: B018 - load the model before timing anything

    factoids, records = read_jsonl(args.factoid, args.factoid_limit), []
    for row in track(factoids, description="factoids (RAG)", console=console):
        answer, ttft, total = timed_ask(service, row["question"], False, args.max_tokens)
        texts = chunk_texts(service, [c["chunk_id"] for c in answer.citations])
        records.append(
            {
                "id": row["id"],
                "ttft_s": ttft,
                "total_s": total,
                "match": answer_match(answer.text, row["answer"], row["answer_type"]),
                "cited": len(answer.citations),
                "cited_valid": sum(
                    passage_contains(texts[c["chunk_id"]], row["answer"], row["answer_type"])
                    for c in answer.citations
                ),
                "flags": answer.flags,
                "top_dense": top_dense(service, row["question"]),
                "completion_tokens": answer.usage["completion_tokens"],
                "answer": answer.text,
            }
        )

    tasks, task_records = read_jsonl(args.tasks, args.task_limit), []
    for row in track(tasks, description="agent tasks", console=console):
        answer, ttft, total = timed_ask(service, row["task"], True, args.max_tokens)
        task_records.append(
            {
                "id": row["id"],
                "total_s": total,
                "success": answer_match(answer.text, row["answer"], "numeric", row.get("tolerance", 0.01)),
                "path": answer.path,
                "tools": [s["tool"] for s in answer.steps],
                "flags": answer.flags,
                "answer": answer.text,
            }
        )

    def median(values: list[float]) -> float:
        return statistics.median(values) if values else float("nan")

    def share(count: int, of: int) -> str:
        return f"{count}/{of} ({100 * count / of:.0f}%)" if of else "n/a"

    n = len(records)
    cited = sum(r["cited"] for r in records)
    dense = sorted(r["top_dense"] for r in records)
    table = Table(title=f"bench/answer · {args.model} · {n} factoids, {len(task_records)} agent tasks")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [
        (
            "RAG time to first token, median / p90 (s)",
            f"{median([r['ttft_s'] for r in records]):.1f} / "
            f"{sorted(r['ttft_s'] for r in records)[int(0.9 * (n - 1))]:.1f}"
            if n
            else "n/a",
        ),
        ("RAG total latency, median (s)", f"{median([r['total_s'] for r in records]):.1f}"),
        ("tokens generated, median", f"{median([r['completion_tokens'] for r in records]):.0f}"),
        ("exact/numeric match", share(sum(r["match"] for r in records), n)),
        (
            "citation validity (cited passages containing the answer)",
            share(sum(r["cited_valid"] for r in records), cited),
        ),
        (
            "answers the model cited itself",
            share(sum("no_citations" not in r["flags"] and r["cited"] > 0 for r in records), n),
        ),
        (
            "answers whose citations were repaired",
            share(sum("citations_repaired" in r["flags"] for r in records), n),
        ),
        ("answers citing nothing after repair", share(sum(r["cited"] == 0 for r in records), n)),
        (
            '"I don\'t know" (relevance threshold)',
            share(sum("no_relevant_passages" in r["flags"] for r in records), n),
        ),
        (
            "top dense score: min / p10 / median",
            f"{dense[0]:.2f} / {dense[int(0.1 * (n - 1))]:.2f} / {median(dense):.2f}" if n else "n/a",
        ),
        ("agent task success", share(sum(r["success"] for r in task_records), len(task_records))),
        (
            "agent: model called a tool",
            share(sum(r["path"] == "agent" for r in task_records), len(task_records)),
        ),
        (
            "agent: fell back to retrieve → answer",
            share(sum(r["path"] == "agent_fallback" for r in task_records), len(task_records)),
        ),
        (
            "agent: used search then calculator",
            share(sum({"search", "calculator"} <= set(r["tools"]) for r in task_records), len(task_records)),
        ),
        (
            "agent: loop guard / malformed-call failure",
            share(
                sum(any(f.startswith(("loop_guard", "failed")) for f in r["flags"]) for r in task_records),
                len(task_records),
            ),
        ),
        ("agent total latency, median (s)", f"{median([r['total_s'] for r in task_records]):.1f}"),
    ]
    for name, value in rows:
        table.add_row(name, value)
    console.print(table)
    if args.out:
        args.out.write_text(
            json.dumps({"factoids": records, "tasks": task_records}, indent=1), encoding="utf-8"
        )


if __name__ == "__main__":
    main()
