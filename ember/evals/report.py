"""`ember eval report RUN [RUN ...]`: one Markdown and one self-contained HTML report (plots embedded as
base64 PNG) of one or more runs; runs of the same suite are compared side by side."""

from __future__ import annotations

import base64
import html
import math
from dataclasses import dataclass
from pathlib import Path

from ember.evals.report_plots import latency_distributions, metric_bars
from ember.evals.runs import RunFolder
from ember.evals.stats import bootstrap_ci
from ember.evals.suite_metrics import LATENCY_KEYS, suite_metrics, values

CONFIG_KEYS = ("model", "quantization", "collection", "retrieval_mode", "prompt_version", "git_commit")


@dataclass
class Section:
    title: str
    markdown: list[str]
    plots: list[tuple[str, bytes]]  # (file stem, PNG)


def _fmt(value: float | None, share: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.1f}%" if share else f"{value:.2f}"


def _suite_section(suite: str, runs: list[RunFolder]) -> Section:
    names = [
        run.path.name + (f" ({i + 1})" if [r.path for r in runs].count(run.path) > 1 else "")
        for i, run in enumerate(runs)
    ]
    items = [run.read_items() for run in runs]
    metrics = suite_metrics(suite, items[0])
    lines = [f"## {suite}", ""]
    configs = [run.read_config() for run in runs]
    lines += ["| run | items | " + " | ".join(CONFIG_KEYS) + " |", "|---" * (len(CONFIG_KEYS) + 2) + "|"]
    for name, config, records in zip(names, configs, items, strict=True):
        cells = [str(config.get(k, "")) for k in CONFIG_KEYS]
        lines.append(f"| {name} | {len(records)} | " + " | ".join(cells) + " |")
    lines += ["", "| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    stats: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    bar_labels = []
    for metric in metrics:
        per_run = []
        for records in items:
            vals = list(values(records, metric.key).values())
            per_run.append((sum(vals) / len(vals), *bootstrap_ci(vals), len(vals)) if vals else None)
        cells = [
            f"{_fmt(s[0], metric.share)} [{_fmt(s[1], metric.share)}, {_fmt(s[2], metric.share)}] n={s[3]}"
            if s
            else "n/a"
            for s in per_run
        ]
        lines.append(f"| {metric.label} | " + " | ".join(cells) + " |")
        if metric.share and all(per_run):
            bar_labels.append(metric.label)
            for name, s in zip(names, per_run, strict=True):
                stats[name].append(s[:3])
    for name, run in zip(names, runs, strict=True):
        extra = {k: v for k, v in run.read_summary().items() if k not in ("suite", "items", "metrics")}
        if extra:
            lines += ["", f"{name}: " + "; ".join(f"{k}: {v}" for k, v in extra.items())]
    plots = []
    if bar_labels:
        plots.append((f"{suite}-metrics", metric_bars(f"{suite}: mean and 95% CI", bar_labels, stats)))
    latency = {
        f"{name} {key}": list(values(records, key).values())
        for name, records in zip(names, items, strict=True)
        for key in LATENCY_KEYS
        if values(records, key)
    }
    if latency:
        plots.append((f"{suite}-latency", latency_distributions(f"{suite}: latency", latency)))
    return Section(suite, lines, plots)


def _other_section(suite: str, runs: list[RunFolder]) -> Section:
    """A suite this module does not know (e.g. llm): its summary's numbers, as written."""
    lines = [f"## {suite}", ""]
    for run in runs:
        lines += [f"**{run.path.name}**", "", "| key | value |", "|---|---|"]
        summary = run.read_summary()
        for key, value in summary.items():
            if isinstance(value, int | float | str) and key != "suite":
                lines.append(f"| {key} | {value} |")
        lines.append("")
    return Section(suite, lines, [])


def build_report(
    runs: list[RunFolder], out: Path, title: str = "Ember evaluation report"
) -> tuple[Path, Path]:
    """Write report.md (plots beside it as PNG files) and report.html (plots inlined) under ``out``."""
    by_suite: dict[str, list[RunFolder]] = {}
    for run in runs:
        by_suite.setdefault(str(run.read_config().get("suite", "unknown")), []).append(run)
    sections = [
        _suite_section(suite, group)
        if suite in ("answers", "agent", "retrieval")
        else _other_section(suite, group)
        for suite, group in by_suite.items()
    ]
    out.mkdir(parents=True, exist_ok=True)
    markdown = [f"# {title}", "", "Cells: mean [bootstrap 95% interval] n=items.", ""]
    page = [f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        body = list(section.markdown)
        for stem, png in section.plots:
            (out / f"{stem}.png").write_bytes(png)
            body += ["", f"![{stem}]({stem}.png)"]
        markdown += [*body, ""]
        page.append(f"<pre>{html.escape(chr(10).join(section.markdown))}</pre>")
        page += [
            f'<img alt="{stem}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
            for stem, png in section.plots
        ]
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("\n".join(markdown) + "\n", encoding="utf-8")
    style = (
        "body{font-family:sans-serif;max-width:70em;margin:auto}pre{white-space:pre-wrap}img{max-width:100%}"
    )
    html_path.write_text(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{style}</style>"
        + "\n".join(page),
        encoding="utf-8",
    )
    return md_path, html_path
