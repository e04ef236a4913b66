"""Opens each collection's index once, lazily, from ``<home>/indexes/<collection>/``."""

from __future__ import annotations

import re
from pathlib import Path

from ember.retrieval.collection_index import CollectionIndex
from ember.retrieval.embedder import DEFAULT_EMBEDDING_MODEL
from ember.retrieval.writer_lock import WriterLock

_NAME_CHARACTER = re.compile(r"[\w.-]")
_MAX_NAME_BYTES = 200  # the name is a folder name: room for the store's own suffixes under the 255-byte limit


class InvalidCollectionName(ValueError):
    """A collection name that cannot name its index folder."""


def check_collection_name(name: str) -> None:
    """The one rule for collection names (each names a folder under the index root); raises
    InvalidCollectionName saying what is wrong."""
    bad = sorted({c for c in name if not _NAME_CHARACTER.fullmatch(c)})
    if not name:
        problem = "is empty"
    elif bad:
        problem = f"contains {', '.join(map(repr, bad))}: use only letters, digits, '_', '-' and '.'"
    elif name[0] in "._-":  # not hidden, not '.' or '..', not taken for a command-line option
        problem = f"starts with {name[0]!r}: start with a letter or digit"
    elif len(name.encode()) > _MAX_NAME_BYTES:
        problem = f"is longer than {_MAX_NAME_BYTES} bytes"
    else:
        return
    raise InvalidCollectionName(f"collection name {name!r} {problem}")


class IndexStore:
    def __init__(self, root: Path, embedding_model: str = DEFAULT_EMBEDDING_MODEL, **index_options) -> None:
        self.root = Path(root)
        self.embedding_model = embedding_model
        self.index_options = index_options
        self._open: dict[str, CollectionIndex] = {}

    def path_for(self, collection: str) -> Path:
        check_collection_name(collection)
        return self.root / collection

    def get(self, collection: str) -> CollectionIndex:
        """The open index for searching, reopened when another process (or store) saved a newer
        generation: one stat of the manifest per call. Writers use ``open_for_write`` instead."""
        cached = self._open.get(collection)
        if cached is not None and (cached.dirty or cached.manifest_stamp() == cached.loaded_stamp):
            return cached
        opened = CollectionIndex(self.path_for(collection), self.embedding_model, **self.index_options)
        self._open[collection] = opened
        return opened

    def writer(self, collection: str) -> WriterLock:
        """The collection's writer lock: hold it while changing the collection's chunks or index."""
        return WriterLock(self.root, collection)

    def open_for_write(self, collection: str, start_empty: bool = False) -> CollectionIndex:
        """A private copy of the index for the lock holder to change and save; searches keep using
        ``get``'s copy until the save, so they never see a half-applied change."""
        return CollectionIndex(
            self.path_for(collection), self.embedding_model, start_empty=start_empty, **self.index_options
        )

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
        """Forget and delete a collection's index files (a deleted collection's; hold its writer lock)."""
        import shutil

        self._open.pop(collection, None)
        shutil.rmtree(self.path_for(collection), ignore_errors=True)
