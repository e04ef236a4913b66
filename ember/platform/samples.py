"""The sample collection: real text on every machine that nobody wrote for Ember.

CPython ships its reference documentation topics in ``pydoc_data.topics``; they are written out as one
text file per topic. Ember's own ``docs/`` folder (present in a source checkout) joins them.
"""

from __future__ import annotations

import re
from pathlib import Path

SAMPLE_COLLECTION = "sample"


def export_python_reference(target: Path) -> Path:
    """Write each pydoc topic to ``target/<topic>.txt``; files already up to date are left alone."""
    from pydoc_data.topics import topics

    target.mkdir(parents=True, exist_ok=True)
    for name, text in topics.items():
        path = target / f"{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}.txt"
        if not path.exists() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")
    return target


def project_docs() -> Path | None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    return docs if docs.is_dir() else None
