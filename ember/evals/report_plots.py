"""The report's plots as PNG bytes (matplotlib, Agg backend): per-metric bars with bootstrap 95%
intervals, one bar per run, and latency distributions."""

from __future__ import annotations

import io

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402 - after choosing the backend


def _png(figure: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    plt.close(figure)
    return buffer.getvalue()


def metric_bars(title: str, labels: list[str], runs: dict[str, list[tuple[float, float, float]]]) -> bytes:
    """Horizontal bars: for each metric label, one bar per run (mean, ci_low, ci_high), in percent."""
    count = max(1, len(runs))
    height = 0.8 / count
    figure, axes = plt.subplots(figsize=(8, 0.45 * len(labels) * max(1, count * 0.7) + 1.2))
    for index, (run, stats) in enumerate(runs.items()):
        positions = [i + index * height for i in range(len(labels))]
        means = [100 * s[0] for s in stats]
        errors = [
            [100 * (s[0] - s[1]) for s in stats],
            [100 * (s[2] - s[0]) for s in stats],
        ]
        axes.barh(positions, means, height=height, xerr=errors, capsize=3, label=run)
    axes.set_yticks([i + height * (count - 1) / 2 for i in range(len(labels))], labels)
    axes.invert_yaxis()
    axes.set_xlim(0, 100)
    axes.set_xlabel("% (bars: bootstrap 95% interval)")
    axes.set_title(title)
    if count > 1:
        axes.legend(loc="lower right", fontsize=8)
    return _png(figure)


def latency_distributions(title: str, series: dict[str, list[float]]) -> bytes:
    """Box plots, one per (run, latency) series, in seconds."""
    figure, axes = plt.subplots(figsize=(8, 0.5 * len(series) + 1.2))
    names = list(series)
    axes.boxplot([series[n] for n in names], vert=False, showmeans=True)
    axes.set_yticks(range(1, len(names) + 1), names)
    axes.invert_yaxis()
    axes.set_xlabel("seconds")
    axes.set_title(title)
    return _png(figure)
