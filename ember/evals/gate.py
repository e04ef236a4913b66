"""`ember eval gate`: does a candidate run regress on a baseline? A paired bootstrap over the items both
runs scored; a metric regresses when its whole 95% interval lies on the worse side of zero."""

from __future__ import annotations

from dataclasses import dataclass

from ember.evals.runs import RunFolder
from ember.evals.stats import paired_bootstrap
from ember.evals.suite_metrics import suite_metrics, values


@dataclass(frozen=True)
class GateRow:
    metric: str
    label: str
    items: int  # scored by both runs
    baseline: float
    candidate: float
    difference: float  # candidate − baseline
    ci_low: float
    ci_high: float
    regressed: bool


def gate(baseline: RunFolder, candidate: RunFolder, metrics: list[str] | None = None) -> list[GateRow]:
    base_suite, cand_suite = baseline.read_config().get("suite"), candidate.read_config().get("suite")
    if base_suite != cand_suite:
        raise ValueError(f"the runs are of different suites: {base_suite} and {cand_suite}")
    base_items, cand_items = baseline.read_items(), candidate.read_items()
    known = {m.key: m for m in suite_metrics(str(base_suite), base_items)}
    unknown = [m for m in metrics or [] if m not in known]
    if unknown:
        raise ValueError(
            f"unknown metric {', '.join(unknown)} for {base_suite}; choose from {', '.join(known)}"
        )
    chosen = [known[m] for m in metrics] if metrics else [m for m in known.values() if m.gate]
    rows = []
    for metric in chosen:
        base, cand = values(base_items, metric), values(cand_items, metric)
        shared = sorted(base.keys() & cand.keys())
        if not shared:
            continue
        b, c = [base[i] for i in shared], [cand[i] for i in shared]
        diff, low, high = paired_bootstrap(b, c)
        worse = high < 0 if metric.higher_is_better else low > 0
        rows.append(
            GateRow(
                metric.key,
                metric.label,
                len(shared),
                sum(b) / len(b),
                sum(c) / len(c),
                diff,
                low,
                high,
                worse,
            )
        )
    if not rows:
        raise ValueError(f"{baseline.path} and {candidate.path} share no scored items")
    return rows
