"""Opens each collection's index once, lazily, from ``<home>/indexes/<collection>/``."""

from __future__ import annotations

import re
from pathlib import Path

from ember.retrieval.collection_index import CollectionIndex
from ember.retrieval.embedder import DEFAULT_EMBEDDING_MODEL

_SAFE_NAME = re.compile(r"^[\w.-]+$")


class IndexStore:
    def __init__(self, root: Path, embedding_model: str = DEFAULT_EMBEDDING_MODEL, **index_options) -> None:
        self.root = Path(root)
        self.embedding_model = embedding_model
        self.index_options = index_options
        self._open: dict[str, CollectionIndex] = {}

    def path_for(self, collection: str) -> Path:
        if not _SAFE_NAME.match(collection) or collection in (".", ".."):
            raise ValueError(f"collection name {collection!r} is not usable as an index directory name")
        return self.root / collection

    def get(self, collection: str) -> CollectionIndex:
        """The open index, reopened when another process (or store) saved a newer generation."""
        cached = self._open.get(collection)
        if cached is not None and not cached.dirty and cached.manifest_stamp() != cached.loaded_stamp:
            del self._open[collection]
        if collection not in self._open:
            self._open[collection] = CollectionIndex(
                self.path_for(collection), self.embedding_model, **self.index_options
            )
        return self._open[collection]

    def rename(self, old: str, new: str) -> None:
        """Move a collection's index files to its new name (nothing to do if it has none yet)."""
        source, target = self.path_for(old), self.path_for(new)
        self._open.pop(old, None)
        self._open.pop(new, None)
        if source.exists():
            if target.exists():
                raise ValueError(f"an index for collection {new!r} already exists at {target}")
            source.rename(target)

    def drop(self, collection: str) -> None:
        """Forget and delete a collection's index files (for rebuilds and deleted collections)."""
        import shutil

        self._open.pop(collection, None)
        shutil.rmtree(self.path_for(collection), ignore_errors=True)
