"""An offline corpus for the from-scratch run: the docstrings of Python's standard library (one document
per module, class or function) and the plain-text files under /usr/share/doc, as JSONL {"name", "text"}.

    python bench/train/corpus.py /tmp/pydocs.jsonl
"""

from __future__ import annotations

import ast
import json
import sys
import sysconfig
from pathlib import Path

DOC_SUFFIXES = {".txt", ".md", ".rst"}


def docstrings(root: Path):
    for path in sorted(root.rglob("*.py")):
        if {"test", "tests", "site-packages", "idlelib"} & set(path.parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                text = ast.get_docstring(node)
                if text and len(text) > 40:
                    where = getattr(node, "name", "")
                    yield f"{path.relative_to(root)}:{where}", text


def share_doc(root: Path = Path("/usr/share/doc")):
    for path in sorted(root.rglob("*")):
        if path.is_file() and (path.suffix.lower() in DOC_SUFFIXES or path.name.startswith("README")):
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if len(text) > 40:
                yield str(path), text


def main(out: Path) -> None:
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    count = size = 0
    with out.open("w") as handle:
        for name, text in [*docstrings(stdlib), *share_doc()]:
            handle.write(json.dumps({"name": name, "text": text}) + "\n")
            count, size = count + 1, size + len(text.encode())
    print(f"{count} documents, {size / 1e6:.1f} MB -> {out}")


if __name__ == "__main__":
    main(Path(sys.argv[1]))
