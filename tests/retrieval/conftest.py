from pathlib import Path
from pydoc_data.topics import topics

import pytest

from ember.retrieval.collection_index import CollectionIndex, indexed_text
from ember.retrieval.embedder import Embedder
from ember.retrieval.splitting import split_passages
from ember.retrieval.types import ChunkRecord


def pydoc_records(n_topics: int, max_words: int = 120) -> list[ChunkRecord]:
    """Real text: the Python reference topics, one document per topic, split into passages."""
    records, chunk_id = [], 0
    for doc_id, (name, text) in enumerate(sorted(topics.items())[:n_topics], start=1):
        for passage in split_passages(text, max_words):
            chunk_id += 1
            records.append(ChunkRecord(chunk_id, doc_id, passage, title=name, source=f"pydoc:{name}"))
    return records


@pytest.fixture(scope="session")
def small_records() -> list[ChunkRecord]:
    return pydoc_records(12)


@pytest.fixture(scope="session")
def small_vectors(small_records):
    """MiniLM embeddings of the small corpus, computed once for the whole session."""
    return Embedder().encode([indexed_text(r) for r in small_records])


@pytest.fixture
def built_index(tmp_path: Path, small_records, small_vectors) -> CollectionIndex:
    index = CollectionIndex(tmp_path / "indexes" / "pydoc")
    index.upsert(small_records, vectors=small_vectors)
    index.save()
    return index
