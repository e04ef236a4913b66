"""Follow-up rewriting on the sample collection: is a second question a follow-up, and does the rewrite
help retrieval?

conversations.jsonl holds hand-written two-turn conversations over the sample collection (Python's
reference topics): independent second questions and real follow-ups, each with the pydoc topics that
answer the second turn. For every pair the second turn is searched as asked, as the previous rule
rewrote it (glued to the first turn when it had fewer than three content words or any "refers back"
word) and as the current rule does (ember.agents.rewrite with the platform's dense grounding score).
Relevance is judged by document: the top-10 chunks are mapped to their document (one pydoc topic each),
duplicates dropped, and a document counts as relevant when it is one of the pair's topics.

    ember sample                            # once, into EMBER_HOME
    python bench/followups/run.py           # EMBER_HOME=... to use another home
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from rich.console import Console
from rich.table import Table

from ember.agents.citations import content_words
from ember.agents.rewrite import follow_up_reason, joined
from ember.evals.metrics import ndcg_at
from ember.platform.answers import GROUNDING_K, best_dense_score
from ember.platform.samples import SAMPLE_COLLECTION
from ember.platform.service import EmberService
from ember.platform.settings import Settings

CONVERSATIONS = Path(__file__).with_name("conversations.jsonl")
K = 10
# The rule this replaced, kept here only to measure against.
_OLD_REFERS_BACK = re.compile(
    r"\b(it|its|it's|they|them|their|this|that|these|those|he|she|him|his|her|there|same|also|"
    r"what about|how about|and)\b",
    re.IGNORECASE,
)


def old_rule(question: str) -> bool:
    return bool(_OLD_REFERS_BACK.search(question)) or len(content_words(question)) < 3


def document_ndcg(service: EmberService, query: str, topics: list[str]) -> float:
    hits = service.search(query, [SAMPLE_COLLECTION], k=K)
    documents = list(dict.fromkeys(h.title for h in hits.hits))
    return ndcg_at(documents, dict.fromkeys(topics, 1), K)


def precision_recall(predicted: list[bool], truth: list[bool]) -> tuple[float, float]:
    hits = sum(p and t for p, t in zip(predicted, truth, strict=True))
    return hits / max(1, sum(predicted)), hits / max(1, sum(truth))


def main() -> None:
    pairs = [json.loads(line) for line in CONVERSATIONS.read_text(encoding="utf-8").splitlines() if line]
    service = EmberService(Settings())

    def grounding(text: str) -> float:
        return best_dense_score(service.search(text, [SAMPLE_COLLECTION], k=GROUNDING_K).hits)

    rows = []
    for pair in pairs:
        first, second, topics = pair["first"], pair["second"], pair["topics"]
        reason = follow_up_reason(second, first, grounding)
        old = old_rule(second)
        rows.append(
            {
                "id": pair["id"],
                "follow_up": pair["follow_up"],
                "reason": reason,
                "old": old,
                "as_asked": document_ndcg(service, second, topics),
                "old_rule": document_ndcg(service, joined(first, second) if old else second, topics),
                "new_rule": document_ndcg(service, joined(first, second) if reason else second, topics),
                "grounding": grounding(second),
            }
        )
    truth = [r["follow_up"] for r in rows]
    console = Console()
    table = Table(title=f"follow-up detection ({len(rows)} pairs, {sum(truth)} follow-ups)")
    for column in ("rule", "precision", "recall"):
        table.add_column(column)
    rules = {"previous": [r["old"] for r in rows], "current": [bool(r["reason"]) for r in rows]}
    for name, predicted in rules.items():
        precision, recall = precision_recall(predicted, truth)
        table.add_row(name, f"{precision:.2f}", f"{recall:.2f}")
    console.print(table)

    table = Table(title=f"second-turn document nDCG@{K}")
    for column in ("pairs", "n", "as asked", "previous rule", "current rule"):
        table.add_column(column)
    for name, subset in (
        ("independent", [r for r in rows if not r["follow_up"]]),
        ("follow-ups", [r for r in rows if r["follow_up"]]),
        ("all", rows),
    ):
        means = [sum(r[key] for r in subset) / len(subset) for key in ("as_asked", "old_rule", "new_rule")]
        table.add_row(name, str(len(subset)), *(f"{m:.3f}" for m in means))
    console.print(table)
    for r in rows:
        if bool(r["reason"]) != r["follow_up"]:
            console.print(f"misjudged {r['id']}: reason={r['reason']!r} grounding={r['grounding']:.2f}")
    service.close()


if __name__ == "__main__":
    main()
