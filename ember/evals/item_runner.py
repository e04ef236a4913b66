"""Score items on worker threads, each record appended to the run folder as soon as it is done, so an
interrupted run resumes by skipping the ids already in items.jsonl."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TypeVar

from ember.evals.runs import RunFolder
from ember.llm.inference.engine import use_one_cpu_thread

T = TypeVar("T")


def run_items(
    units: Sequence[tuple[str, T]],
    score: Callable[[T], dict],
    run: RunFolder,
    concurrency: int = 1,
    on_done: Callable[[], None] | None = None,
) -> list[dict]:
    """``units`` are (record id, input) pairs; returns the records of every unit, in ``units`` order
    (those scored by an earlier, interrupted run included)."""
    done = run.done_ids()
    todo = [(key, value) for key, value in units if key not in done]
    for _ in range(len(units) - len(todo)):
        if on_done:
            on_done()

    def scored(key: str, value: T) -> dict:
        return {"id": key, **score(value)}

    # The items' own torch work (a query's embedding) on one core: the local model's worker keeps the
    # process's one OpenMP team, and with it its decode speed (ember.llm.inference.scheduler).
    with ThreadPoolExecutor(max_workers=max(1, concurrency), initializer=use_one_cpu_thread) as pool:
        futures = [pool.submit(scored, key, value) for key, value in todo]
        try:
            for future in as_completed(futures):
                run.append_item(future.result())
                if on_done:
                    on_done()
        except BaseException:
            for future in futures:  # on Ctrl-C or an error: start nothing new, keep what is written
                future.cancel()
            raise
    by_id = {record["id"]: record for record in run.read_items()}
    return [by_id[key] for key, _ in units if key in by_id]
