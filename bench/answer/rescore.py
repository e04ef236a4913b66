"""Score one answers run with the wave-1 scorer and the corrected one, item by item.

    python bench/answer/rescore.py RUN_FOLDER [--wave1-commit 3fe00ac]

Wave 1 kept no per-item outputs, so its own answers cannot be rescored; this shows instead what the
wave-1 scorer (``ember/evals/answer_scoring.py`` at that commit, read with ``git show``) makes of the
answers of a run of ``ember eval answers``, next to the corrected scorer, and lists where they differ.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import types
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
from ember.evals.answer_scoring import answer_match  # noqa: E402
from ember.evals.runs import RunFolder  # noqa: E402


def wave1_scorer(commit: str) -> types.ModuleType:
    source = subprocess.run(
        ["git", "show", f"{commit}:ember/evals/answer_scoring.py"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    module = types.ModuleType("wave1_answer_scoring")
    exec(compile(source, f"{commit}:answer_scoring.py", "exec"), module.__dict__)  # noqa: S102 - our own history
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--wave1-commit", default="3fe00ac")
    args = parser.parse_args()
    old = wave1_scorer(args.wave1_commit)
    items = RunFolder(args.run).read_items()
    old_hits = new_hits = 0
    for item in items:
        was = old.answer_match(item["response"], item["gold"], item["answer_type"])
        now = answer_match(item["response"], item["gold"], item["answer_type"])
        old_hits, new_hits = old_hits + was, new_hits + now
        if was != now:
            print(
                f"{item['id']}: wave-1 {was}, corrected {now} | gold {item['gold']!r} | {item['response']!r}"
            )
    n = len(items)
    print(f"wave-1 scorer: {old_hits}/{n} ({100 * old_hits / n:.0f}%)")
    print(f"corrected scorer: {new_hits}/{n} ({100 * new_hits / n:.0f}%)")


if __name__ == "__main__":
    main()
