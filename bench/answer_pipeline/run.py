"""bench/answer_pipeline: #14 items 5-7 (decoding that does not loop, the pipeline keeps what retrieval
found, an agent a small model can drive) on the development set, before and after, in one run.

    python bench/answer_pipeline/run.py --home /tmp/ap/home prompt     # gold passage reaches the prompt
    python bench/answer_pipeline/run.py --home /tmp/ap/home loops --limit 24 --max-tokens 128
    python bench/answer_pipeline/run.py --home /tmp/ap/home agent

``--home`` is an Ember home whose collection ``--collection`` holds the corpus (ingested by
ember.evals.corpus_collection) and whose models dir holds ``--model``. The questions and tasks are only
read here, never trained on.

- prompt: for each factoid, whether a gold document's chunk is among the passages the RAG graph puts in
  the prompt, under the old pipeline (k 6, hits without a dense score dropped, 1,024 passage tokens) and
  the new one (k 8, RelevanceThreshold.grade, the window-sized budget); no generation.
- loops: each factoid answered (greedy) without and with no-repeat n-gram blocking, interleaved so both
  see the same load; an answer loops when the loop guard stopped it or it hit max_tokens holding a
  repeated 8-word run.
- agent: each task through the agent with plain and constrained decoding: tool-call rate, success, the
  fallback's path, and whether its prompt held every needed topic (relevant_ids).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.progress import track

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from ember.agents.backends import LocalBackend  # noqa: E402
from ember.agents.chat_model import EmberChatModel  # noqa: E402
from ember.agents.packing import select_within_budget  # noqa: E402
from ember.agents.planned_fallback import SUB_QUESTION_K, sub_questions  # noqa: E402
from ember.agents.prompts import AGENT_SYSTEM  # noqa: E402
from ember.agents.rag import RagConfig, RagGraph  # noqa: E402
from ember.agents.tools import SCHEMAS  # noqa: E402
from ember.evals.answer_scoring import answer_match  # noqa: E402
from ember.evals.answer_scoring import looped as answer_looped  # noqa: E402
from ember.evals.corpus_collection import document_keys  # noqa: E402
from ember.platform.service import EmberService  # noqa: E402
from ember.platform.settings import Settings  # noqa: E402

SEARCH = [s for s in SCHEMAS if s["function"]["name"] == "search"]  # the agent's forced first call
SHARED = Path(__file__).resolve().parents[3] / "shared" / "evals"
OLD_K, OLD_BUDGET, OLD_MIN_DENSE = 6, 1024, 0.25  # the pipeline before #14


def gold_documents(service: EmberService, collection: str) -> dict[str, int]:
    """Corpus id (or title) → the id of the document ingest_corpus made of it."""
    return {key: doc for doc, keys in document_keys(service, collection).items() for key in keys}


def read_jsonl(path: Path, limit: int | None) -> list[dict]:
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return rows[:limit]


def prompt_part(service: EmberService, args: argparse.Namespace, gold: dict[str, int]) -> dict:
    llm = EmberChatModel(backend=LocalBackend(service.scheduler))
    count = llm.backend.count_tokens
    search = lambda q, k: service.search(q, [args.collection], k=k).hits  # noqa: E731
    new = RagGraph(llm, search, RagConfig(max_tokens=args.max_tokens))
    old = RagGraph(llm, search, RagConfig(k=OLD_K, context_tokens=OLD_BUDGET, max_tokens=args.max_tokens))
    rows = []
    for item in track(read_jsonl(args.factoid, args.limit), description="factoids", console=args.console):
        state = {"question": item["question"], "history": []}
        wanted = {gold[r] for r in item["relevant_ids"] if r in gold}
        hits = search(item["question"], new.config.k)
        old_hits = [
            h for h in hits[:OLD_K] if h.stages.get("dense") and h.stages["dense"].score >= OLD_MIN_DENSE
        ]
        results = {}
        for name, graph, graded in (
            ("old", old, old_hits),
            ("new", new, new.config.threshold.grade(hits)),
        ):
            passages = select_within_budget(graded, graph.passage_budget(state), count) if graded else []
            results[name] = {
                "retrieved": any(h.document_id in wanted for h in hits[: graph.config.k]),
                "in_prompt": any(h.document_id in wanted for h in passages),
                "passages": len(passages),
                "budget": graph.passage_budget(state),
                "bm25_only_gold": any(h.document_id in wanted and "dense" not in h.stages for h in hits),
            }
        rows.append({"id": item["id"], **results})
    summary = {}
    for name in ("old", "new"):
        summary[name] = {
            "gold_retrieved": sum(r[name]["retrieved"] for r in rows),
            "gold_in_prompt": sum(r[name]["in_prompt"] for r in rows),
            "median_passages": statistics.median(r[name]["passages"] for r in rows),
            "budget_tokens": statistics.median(r[name]["budget"] for r in rows),
        }
    summary["questions"] = len(rows)
    return {"summary": summary, "rows": rows}


def looped(answer, max_tokens: int) -> bool:  # noqa: ANN001 - a platform Answer
    hit_max = answer.usage["completion_tokens"] >= max_tokens
    return answer_looped(answer.text, answer.flags, hit_max)


def loops_part(service: EmberService, args: argparse.Namespace, gold: dict[str, int]) -> dict:
    rows = []
    items = read_jsonl(args.factoid, args.limit)
    for item in track(items, description="factoids x n-gram sizes", console=args.console):
        for n in args.ngram:
            start = time.perf_counter()
            answer = service.ask(
                item["question"], args.collection, max_tokens=args.max_tokens, no_repeat_ngram_size=n
            )
            wanted = {gold[r] for r in item["relevant_ids"] if r in gold}
            rows.append(
                {
                    "id": item["id"],
                    "ngram": n,
                    "looped": looped(answer, args.max_tokens),
                    "hit_max_tokens": answer.usage["completion_tokens"] >= args.max_tokens,
                    "correct": answer_match(answer.text, item["answer"], item["answer_type"]),
                    "gold_in_prompt": bool(wanted & set(answer.prompt_document_ids)),
                    "seconds": time.perf_counter() - start,
                    "flags": answer.flags,
                    "text": answer.text,
                }
            )
    summary = {}
    for n in args.ngram:
        mine = [r for r in rows if r["ngram"] == n]
        summary[f"ngram={n}"] = {
            "answers": len(mine),
            "looped": sum(r["looped"] for r in mine),
            "hit_max_tokens": sum(r["hit_max_tokens"] for r in mine),
            "correct": sum(r["correct"] for r in mine),
            "gold_in_prompt": sum(r["gold_in_prompt"] for r in mine),
            "median_seconds": round(statistics.median(r["seconds"] for r in mine), 1),
        }
    return {"summary": summary, "rows": rows}


def agent_part(service: EmberService, args: argparse.Namespace, gold: dict[str, int]) -> dict:
    rows = []
    for task in track(read_jsonl(args.tasks, args.limit), description="agent tasks", console=args.console):
        wanted = {gold[r] for r in task["relevant_ids"] if r in gold}
        for constrained in (False, True):
            start = time.perf_counter()
            answer = service.ask(
                task["task"], args.collection, agent=True, max_tokens=args.max_tokens,
                constrained_tool_calls=constrained,
            )  # fmt: skip
            rows.append(
                {
                    "id": task["id"],
                    "constrained": constrained,
                    "path": answer.path,
                    "fallback_reason": answer.fallback_reason,
                    "tool_called": answer.path == "agent",
                    "tools": [s.tool for s in answer.steps],
                    "all_topics_in_prompt": wanted <= set(answer.prompt_document_ids),
                    "success": answer_match(
                        answer.text, task["answer"], task["answer_type"], task.get("tolerance", 0.01)
                    ),
                    "seconds": time.perf_counter() - start,
                    "text": answer.text,
                }
            )
    summary = {}
    for constrained in (False, True):
        mine = [r for r in rows if r["constrained"] is constrained]
        summary["constrained" if constrained else "plain"] = {
            "tasks": len(mine),
            "tool_called": sum(r["tool_called"] for r in mine),
            "fallback": sum(r["path"] == "agent_fallback" for r in mine),
            "all_topics_in_prompt": sum(r["all_topics_in_prompt"] for r in mine),
            "success": sum(r["success"] for r in mine),
            "median_seconds": round(statistics.median(r["seconds"] for r in mine), 1),
        }
    return {"summary": summary, "rows": rows}


def plan_part(service: EmberService, args: argparse.Namespace, gold: dict[str, int]) -> dict:
    """Whether the fallback's passages hold every topic a task needs: the old one-pass fallback (its
    RAG pass under the old pipeline) against the planned fallback's searches (no generation)."""
    llm = EmberChatModel(backend=LocalBackend(service.scheduler))
    count = llm.backend.count_tokens
    search = lambda q, k: service.search(q, [args.collection], k=k).hits  # noqa: E731
    old = RagGraph(llm, search, RagConfig(k=OLD_K, context_tokens=OLD_BUDGET, max_tokens=args.max_tokens))
    rows = []
    for task in read_jsonl(args.tasks, args.limit):
        wanted = {gold[r] for r in task["relevant_ids"] if r in gold}
        hits = search(task["task"], OLD_K)
        graded = [h for h in hits if h.stages.get("dense") and h.stages["dense"].score >= OLD_MIN_DENSE]
        state = {"question": task["task"], "history": []}
        one_pass = select_within_budget(graded, old.passage_budget(state), count) if graded else []
        planned = {h.document_id for q in sub_questions(task["task"]) for h in search(q, SUB_QUESTION_K)}
        top10 = {h.document_id for h in search(task["task"], 10)}
        rows.append(
            {
                "id": task["id"],
                "one_pass": wanted <= {h.document_id for h in one_pass},
                "planned": wanted <= planned,
                "hybrid_top10": wanted <= top10,
                "sub_questions": sub_questions(task["task"]),
            }
        )
    summary = {name: sum(r[name] for r in rows) for name in ("one_pass", "planned", "hybrid_top10")}
    return {"summary": {**summary, "tasks": len(rows)}, "rows": rows}


def first_turn_part(service: EmberService, args: argparse.Namespace, gold: dict[str, int]) -> dict:
    """The agent's first model turn on each task, plain and constrained (as AgentGraph does it: a search
    call forced open): whether a well-formed call came out, and with what arguments."""
    backend = LocalBackend(service.scheduler)
    rows = []
    for task in track(read_jsonl(args.tasks, args.limit), description="first turns", console=args.console):
        messages = [
            {
                "role": "system",
                "content": f"{AGENT_SYSTEM}\nCollections searched by default: {args.collection}.",
            },
            {"role": "user", "content": task["task"]},
        ]
        for constrained in (False, True):
            start = time.perf_counter()
            extra = {"logits_processor": backend.tool_call_constraint(SEARCH, True)} if constrained else {}
            result = backend.chat(messages, SCHEMAS, max_tokens=args.max_tokens, **extra)
            rows.append(
                {
                    "id": task["id"],
                    "constrained": constrained,
                    "calls": [{"name": c.name, "arguments": c.arguments} for c in result.tool_calls],
                    "malformed": len(result.malformed_tool_calls),
                    "seconds": time.perf_counter() - start,
                    "text": result.text,
                }
            )
    summary = {}
    for constrained in (False, True):
        mine = [r for r in rows if r["constrained"] is constrained]
        summary["constrained" if constrained else "plain"] = {
            "tasks": len(mine),
            "well_formed_call": sum(bool(r["calls"]) for r in mine),
            "malformed": sum(r["malformed"] > 0 for r in mine),
            "median_seconds": round(statistics.median(r["seconds"] for r in mine), 1),
        }
    return {"summary": summary, "rows": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("part", choices=["prompt", "loops", "plan", "first_turn", "agent"])
    parser.add_argument("--home", type=Path, required=True)
    parser.add_argument("--collection", default="dev")
    parser.add_argument("--model", default="smollm2-135m-instruct", help="model name under HOME or path")
    parser.add_argument("--factoid", type=Path, default=SHARED / "qa" / "factoid.jsonl")
    parser.add_argument("--tasks", type=Path, default=SHARED / "agent" / "tasks.jsonl")
    parser.add_argument("--limit", type=int, default=None, help="first N questions or tasks")
    parser.add_argument("--max-tokens", type=int, default=200)
    parser.add_argument("--ngram", type=int, nargs="+", default=[0, 6], help="no_repeat_ngram_size values")
    parser.add_argument("--out", type=Path, default=None, help="write the rows and summary as JSON")
    args = parser.parse_args()
    args.console = Console()
    home = args.home
    service = EmberService(
        Settings(home=home, database_url=f"sqlite:///{home / 'ember.db'}", llm_model=args.model, reranker="")
    )
    gold = gold_documents(service, args.collection)
    parts = {"prompt": prompt_part, "loops": loops_part, "plan": plan_part, "first_turn": first_turn_part}
    part = {**parts, "agent": agent_part}[args.part]
    result = part(service, args, gold)
    args.console.print_json(json.dumps(result["summary"]))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str), encoding="utf-8")
    service.close()


if __name__ == "__main__":
    main()
