"""What a run reports: metrics.jsonl, a loss/bpb plot (PNG) and a rich live line."""

from __future__ import annotations

import json
from pathlib import Path

from rich.console import Console
from rich.live import Live
from rich.table import Table


class MetricsLog:
    """Appends one JSON object per record to ``path``; keeps them for the plot."""

    def __init__(self, path: Path, resume_from_step: int = 0) -> None:
        self.path = Path(path)
        self.records = (
            [r for r in read_metrics(self.path) if r["step"] <= resume_from_step] if resume_from_step else []
        )
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("w") as handle:  # a resumed run drops the records past its checkpoint
            handle.writelines(json.dumps(r) + "\n" for r in self.records)

    def write(self, record: dict) -> None:
        self.records.append(record)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def read_metrics(path: Path) -> list[dict]:
    path = Path(path)
    return (
        [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.is_file() else []
    )


def plot_metrics(records: list[dict], path: Path, title: str = "") -> Path:
    """Training loss per step and val bits-per-byte per evaluation, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    train = [r for r in records if "loss" in r]
    val = [r for r in records if "val_bpb" in r]
    figure, (left, right) = plt.subplots(1, 2, figsize=(9, 3.2), dpi=80)
    left.plot([r["step"] for r in train], [r["loss"] for r in train], linewidth=1)
    left.set_xlabel("step")
    left.set_ylabel("train loss (nats/token)")
    right.plot([r["step"] for r in val], [r["val_bpb"] for r in val], marker="o", markersize=3)
    right.set_xlabel("step")
    right.set_ylabel("val bits per byte")
    for axis in (left, right):
        axis.grid(alpha=0.3)
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)
    return Path(path)


class LiveDisplay:
    """One table row, refreshed every step: step, loss, val bpb, tokens/s, MFU, elapsed."""

    def __init__(self, total_steps: int, enabled: bool = True) -> None:
        self.total, self.enabled = total_steps, enabled
        self.console = Console()
        self.live = Live(self._table({}), console=self.console, refresh_per_second=4) if enabled else None

    def __enter__(self) -> LiveDisplay:
        if self.live:
            self.live.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.live:
            self.live.__exit__(*exc)

    def update(self, record: dict, val_bpb: float | None) -> None:
        if self.live:
            self.live.update(self._table({**record, "val_bpb": val_bpb}))

    def print(self, text: str) -> None:
        if self.enabled:
            self.console.print(text, markup=False, highlight=False)

    def _table(self, r: dict) -> Table:
        table = Table(box=None)
        for column in ("step", "loss", "val bpb", "lr x", "tok/s", "MFU", "elapsed"):
            table.add_column(column, justify="right")
        if r:
            mfu = f"{r['mfu']:.1%}" if r.get("mfu") is not None else "-"
            bpb = f"{r['val_bpb']:.4f}" if r.get("val_bpb") is not None else "-"
            table.add_row(
                f"{r['step']}/{self.total}",
                f"{r['loss']:.4f}",
                bpb,
                f"{r['lr_multiplier']:.2f}",
                f"{r['tokens_per_s']:,.0f}",
                mfu,
                f"{r['elapsed_s']:.0f}s",
            )
        return table
