"""Turn the user's PATH (folder, glob or single file) into files, and the scope for removals."""

from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

_GLOB_CHARS = set("*?[")


class SourceError(ValueError):
    """The PATH given to ingest names nothing that can be ingested."""


@dataclass(frozen=True)
class SourceSet:
    files: list[Path]
    # Documents under ``root`` whose relative path matches ``pattern`` and that are no longer in
    # ``files`` are the ones a run may remove. None for a single file: nothing else is in scope.
    root: Path | None
    pattern: str

    def in_scope(self, source_uri: str) -> bool:
        if self.root is None:
            return False
        prefix = self.root.as_uri().rstrip("/") + "/"
        if not source_uri.startswith(prefix):
            return False
        relative = source_uri[len(prefix) :]
        return fnmatchcase(relative, self.pattern) or fnmatchcase(relative, "*/" + self.pattern)


def _visible(path: Path, root: Path) -> bool:
    return not any(part.startswith(".") for part in path.relative_to(root).parts)


def resolve_sources(path: str, pattern: str | None = None) -> SourceSet:
    candidate = Path(path).expanduser()
    if candidate.is_dir():
        root = candidate.resolve()
        pattern = pattern or "*"
        files = sorted(
            p for p in root.rglob(pattern) if p.is_file() and not p.is_symlink() and _visible(p, root)
        )
        return SourceSet(files, root, pattern)
    if candidate.is_file():
        return SourceSet([candidate.resolve()], None, "")
    if _GLOB_CHARS & set(path):
        parts = Path(path).expanduser().parts
        fixed = [p for p in parts[: next(i for i, p in enumerate(parts) if _GLOB_CHARS & set(p))]]
        root = Path(*fixed).resolve() if fixed else Path.cwd()
        relative_pattern = str(Path(path).expanduser().resolve().relative_to(root)) if fixed else path
        # pathlib's "**" does not descend into symlinked folders, so a symlink loop cannot repeat a file;
        # the set keeps a file reached by two names (a symlink and its target) once.
        matches = root.glob(relative_pattern)
        files = sorted({p.resolve() for p in matches if p.is_file() and _visible(p, root)})
        if not files:
            raise SourceError(f"{path}: the pattern matches no files")
        return SourceSet(files, root, relative_pattern)
    raise SourceError(f"{path}: no such file or folder")
