"""`ember eval report RUN [RUN ...]`: one Markdown and one self-contained HTML report (plots embedded as
base64 PNG) of one or more runs; runs of the same suite (and, for retrieval, the same dataset) are
compared side by side."""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass
from pathlib import Path

from ember.evals.report_plots import latency_distributions, metric_bars
from ember.evals.runs import RunFolder
from ember.evals.stats import bootstrap_ci
from ember.evals.suite_metrics import LATENCY_KEYS, suite_metrics, values

CONFIG_KEYS = (
    "model",
    "quantization",
    "collection",
    "retrieval_mode",
    "embedding_model",
    "reranker",
    "samples",
    "temperature",
    "limit",
    "prompt_version",
    "git_commit",
)
SUMMARY_KEYS_SHOWN_AS_METRICS = ("suite", "items", "metrics")


@dataclass
class Section:
    title: str
    markdown: list[str]
    plots: list[tuple[str, bytes]]  # (file stem, PNG)


def _fmt(value: float | None, share: bool) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * value:.1f}%" if share else f"{value:.2f}"


def _stem(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def _run_names(runs: list[RunFolder]) -> list[str]:
    paths = [run.path for run in runs]
    return [
        run.path.name + (f" ({i + 1})" if paths.count(run.path) > 1 else "") for i, run in enumerate(runs)
    ]


def _suite_section(suite: str, title: str, runs: list[RunFolder]) -> Section:
    names = _run_names(runs)
    items = [run.read_items() for run in runs]
    configs = [run.read_config() for run in runs]
    keys = [k for k in CONFIG_KEYS if any(c.get(k) not in (None, "") for c in configs)]
    lines = [f"## {title}", ""]
    lines += ["| run | items | " + " | ".join(keys) + " |", "|---" * (len(keys) + 2) + "|"]
    for name, config, records in zip(names, configs, items, strict=True):
        lines.append(
            f"| {name} | {len(records)} | " + " | ".join(str(config.get(k, "")) for k in keys) + " |"
        )
    lines += ["", "| metric | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    bars: dict[str, list[tuple[float, float, float]]] = {n: [] for n in names}
    bar_labels = []
    for metric in suite_metrics(suite, items[0]):
        per_run = []
        for records in items:
            vals = list(values(records, metric).values())
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
                bars[name].append(s[:3])
    for name, run in zip(names, runs, strict=True):
        extra = {k: v for k, v in run.read_summary().items() if k not in SUMMARY_KEYS_SHOWN_AS_METRICS}
        if extra:
            shown = "; ".join(
                f"{k}: {v:.3f}" if isinstance(v, float) else f"{k}: {v}" for k, v in extra.items()
            )
            lines += ["", f"{name}: {shown}"]
    plots = []
    if bar_labels:
        plots.append((f"{_stem(title)}-metrics", metric_bars(f"{title}: mean and 95% CI", bar_labels, bars)))
    latency = {
        f"{name} {key}": list(values(records, key).values())
        for name, records in zip(names, items, strict=True)
        for key in LATENCY_KEYS
        if values(records, key)
    }
    if latency:
        plots.append((f"{_stem(title)}-latency", latency_distributions(f"{title}: latency", latency)))
    return Section(title, lines, plots)


def _other_section(suite: str, runs: list[RunFolder]) -> Section:
    """A suite this module does not know (e.g. llm): its summary's numbers, as written."""
    lines = [f"## {suite}", ""]
    for name, run in zip(_run_names(runs), runs, strict=True):
        lines += [f"**{name}**", "", "| key | value |", "|---|---|"]
        for key, value in run.read_summary().items():
            if isinstance(value, int | float | str) and key != "suite":
                lines.append(f"| {key} | {f'{value:.4f}' if isinstance(value, float) else value} |")
        lines.append("")
    return Section(suite, lines, [])


def _html(lines: list[str]) -> str:
    """A section's Markdown (headings, tables, paragraphs) as HTML."""
    out: list[str] = []
    table: list[list[str]] = []
    for line in [*lines, ""]:
        if line.startswith("|"):
            if not set(line) <= set("|-"):
                table.append([html.escape(c.strip()) for c in line.strip("|").split("|")])
            continue
        if table:
            head, *rows = table
            out.append(
                "<table><tr>"
                + "".join(f"<th>{c}</th>" for c in head)
                + "</tr>"
                + "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
                + "</table>"
            )
            table = []
        if line.startswith("## "):
            out.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.strip():
            out.append(f"<p>{html.escape(line.strip('*'))}</p>")
    return "\n".join(out)


def _sections(runs: list[RunFolder]) -> list[Section]:
    groups: dict[tuple[str, str], list[RunFolder]] = {}
    for run in runs:
        config = run.read_config()
        suite = str(config.get("suite", "unknown"))
        title = f"{suite} ({Path(config['dataset']).name})" if suite == "retrieval" else suite
        groups.setdefault((suite, title), []).append(run)
    return [
        _suite_section(suite, title, group)
        if suite in ("answers", "agent", "retrieval")
        else _other_section(suite, group)
        for (suite, title), group in groups.items()
    ]


def build_report(
    runs: list[RunFolder], out: Path, title: str = "Ember evaluation report"
) -> tuple[Path, Path]:
    """Write report.md (plots beside it as PNG files) and report.html (plots inlined) under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    markdown = [f"# {title}", "", "Cells: mean [bootstrap 95% interval] n=items.", ""]
    page = [f"<h1>{html.escape(title)}</h1><p>Cells: mean [bootstrap 95% interval] n=items.</p>"]
    for section in _sections(runs):
        markdown += section.markdown
        page.append(_html(section.markdown))
        for stem, png in section.plots:
            (out / f"{stem}.png").write_bytes(png)
            markdown += ["", f"![{stem}]({stem}.png)"]
            page.append(f'<img alt="{stem}" src="data:image/png;base64,{base64.b64encode(png).decode()}">')
        markdown.append("")
    md_path, html_path = out / "report.md", out / "report.html"
    md_path.write_text("\n".join(markdown) + "\n", encoding="utf-8")
    style = (
        "body{font-family:sans-serif;max-width:80em;margin:auto}img{max-width:100%}"
        "table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:2px 6px}"
    )
    html_path.write_text(
        f"<!doctype html><meta charset=utf-8><title>{html.escape(title)}</title><style>{style}</style>\n"
        + "\n".join(page),
        encoding="utf-8",
    )
    return md_path, html_path
