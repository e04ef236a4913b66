"""The metrics each suite reports, read from its per-item records: one place for names, labels, which
way is better and which ones the gate checks by default; and the summary written to summary.json."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ember.evals.stats import bootstrap_ci


@dataclass(frozen=True)
class Metric:
    key: str  # the per-item field
    label: str
    higher_is_better: bool = True
    gate: bool = False  # checked by `ember eval gate` when no --metric is given
    share: bool = True  # a 0..1 rate (plotted as %), else a value such as seconds
    derive: Callable[[dict], Any] | None = None  # computed from the record, when not a field of its own


ANSWERS = (
    Metric("match", "exact/numeric match", gate=True),
    Metric("exact", "exact text match"),
    Metric("f1", "token F1"),
    Metric("abstained", "abstention rate", higher_is_better=False),
    Metric("false_abstention", "false abstention rate", higher_is_better=False, gate=True),
    Metric("looped", "answers that loop", higher_is_better=False, gate=True),
    Metric("cites", "answers citing something"),
    Metric(
        "model_cited",
        "answers the model cited itself",
        derive=lambda r: (
            None
            if "flags" not in r
            else r["cites"] and not {"no_citations", "invalid_citations"} & set(r["flags"])
        ),
    ),
    Metric(
        "citations_repaired",
        "answers whose citations were repaired",
        higher_is_better=False,
        derive=lambda r: None if "flags" not in r else "citations_repaired" in r["flags"],
    ),
    Metric("citation_valid", "citation validity", gate=True),
    Metric("support_precision", "citation support precision", gate=True),
    Metric("support_recall", "citation support recall", gate=True),
    Metric("retrieval_recall", "gold passage recall at context depth", gate=True),
    Metric("gold_in_prompt", "gold passage reached the prompt"),
    Metric("ttft_s", "time to first token (s)", higher_is_better=False, share=False),
    Metric("total_s", "total latency (s)", higher_is_better=False, share=False),
    Metric("tokens_per_s", "decode tokens/s", share=False),
)
# `ember eval answers --judge`: listed only for runs whose items carry a judge's grade.
JUDGE = (
    # 1..5 on the scale rubric; on pass/fail the grade is the pass (1) or fail (0) itself
    Metric("judge_grade", "judge score", share=False),
    Metric("judge_pass", "judge pass share"),
    Metric("judge_unparsed", "judge verdict unparsed", higher_is_better=False),
)
AGENT = (
    Metric("success", "task success", gate=True),
    Metric("tool_called", "model called a tool"),
    Metric("needed_tools_called", "needed tools called"),
    Metric("malformed_call", "malformed tool call", higher_is_better=False),
    Metric("repaired", "malformed call repaired"),
    Metric("fallback", "fell back to retrieve → answer", higher_is_better=False),
    Metric("loop_guard_stop", "loop-guard stop", higher_is_better=False),
    Metric("gold_in_prompt", "gold passage reached the prompt"),
    Metric("steps", "steps per task", share=False),
    Metric("tokens", "tokens per task", higher_is_better=False, share=False),
    Metric("total_s", "total latency (s)", higher_is_better=False, share=False),
)
RETRIEVAL_COLUMNS = ("ndcg@10", "recall@10", "recall@50", "mrr@10")
LATENCY_KEYS = ("ttft_s", "total_s")


def suite_metrics(suite: str, records: list[dict]) -> tuple[Metric, ...]:
    if suite == "answers":
        return ANSWERS + (JUDGE if any("judge_unparsed" in r for r in records) else ())
    if suite == "agent":
        return AGENT
    if suite == "retrieval":  # one field per mode and measure, e.g. "hybrid ndcg@10"
        keys = [k for k in (records[0] if records else {}) if k.split(" ")[-1] in RETRIEVAL_COLUMNS]
        return tuple(Metric(k, k, gate=k.endswith("ndcg@10")) for k in keys)
    return ()


def values(records: list[dict], key: str | Metric) -> dict[str, float]:
    """Record id → the metric as a number (booleans as 0/1); records without a value are left out."""
    out = {}
    for record in records:
        if isinstance(key, Metric):
            value = key.derive(record) if key.derive else record.get(key.key)
        else:
            value = record.get(key)
        if isinstance(value, bool | int | float) and not (isinstance(value, float) and math.isnan(value)):
            out[str(record["id"])] = float(value)
    return out


def summarize(suite: str, records: list[dict], extra: dict | None = None) -> dict:
    """summary.json: each metric's mean, its bootstrap 95% interval and its item count."""
    metrics = {}
    for metric in suite_metrics(suite, records):
        items = list(values(records, metric).values())
        low, high = bootstrap_ci(items)
        metrics[metric.key] = {
            "label": metric.label,
            "mean": sum(items) / len(items) if items else None,
            "ci_low": None if math.isnan(low) else low,
            "ci_high": None if math.isnan(high) else high,
            "n": len(items),
            "higher_is_better": metric.higher_is_better,
            "share": metric.share,
        }
    return {"suite": suite, "items": len(records), "metrics": metrics, **(extra or {})}
