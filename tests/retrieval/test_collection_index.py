import dataclasses
import os
import signal
import subprocess
import sys
import textwrap
import time

import faiss
import numpy as np
import pytest

from ember.retrieval.collection_index import CollectionIndex, IndexModelMismatch


def _bm25_top(index, text, k=5):
    return index.bm25.search(index.tokenizer(text), k)[0].tolist()


def _dense_top(index, text, k=5):
    ids, _ = index.dense.search(index.embedder.encode([text]), k)
    return ids[0].tolist()


def test_reload_gives_the_same_results(built_index):
    reopened = CollectionIndex(built_index.directory)
    query = "assert statement debugging"
    assert _bm25_top(reopened, query) == _bm25_top(built_index, query)
    assert _dense_top(reopened, query) == _dense_top(built_index, query)
    assert reopened.records == built_index.records
    assert reopened.chunk_ids() == set(built_index.records)


def test_deletes_and_updates_show_in_both_indexes(built_index, small_records):
    victim = small_records[3]
    assert _bm25_top(built_index, victim.text, 1) == [victim.chunk_id]
    assert _dense_top(built_index, victim.text, 1) == [victim.chunk_id]
    built_index.delete([victim.chunk_id])

    changed = dataclasses.replace(small_records[5], text="Zanzibar marmalade recipes for octopus gardeners.")
    built_index.upsert([changed])
    built_index.save()
    for index in (built_index, CollectionIndex(built_index.directory)):
        assert victim.chunk_id not in _bm25_top(index, victim.text, 50)
        assert victim.chunk_id not in _dense_top(index, victim.text, 50)
        assert _bm25_top(index, "octopus marmalade", 1) == [changed.chunk_id]
        assert _dense_top(index, "marmalade for octopus gardeners", 1) == [changed.chunk_id]
        assert len(index.dense) == len(index.bm25) == len(small_records) - 1
        assert index.records[changed.chunk_id].text == changed.text


def test_index_switches_to_ivf_above_the_exact_limit_and_still_deletes(
    tmp_path, small_records, small_vectors
):
    index = CollectionIndex(tmp_path / "ivf", exact_limit=50)
    index.upsert(small_records[:40], vectors=small_vectors[:40])
    assert index.dense.kind == "flat"
    index.upsert(small_records[40:], vectors=small_vectors[40:])
    assert index.dense.kind == "ivf" and len(index.dense) == len(small_records)
    index.delete([small_records[0].chunk_id])
    index.dense.nprobe = 10_000  # probe every list: exact answers for the check
    ids, _ = index.dense.search(small_vectors[:1], 3)
    assert small_records[0].chunk_id not in ids[0].tolist()


def test_other_embedding_model_fails_with_rebuild_hint(built_index, small_vectors):
    with pytest.raises(
        IndexModelMismatch, match=r"built with embedding model .*ember index rebuild -c pydoc"
    ):
        CollectionIndex(built_index.directory, embedding_model="intfloat/e5-small-v2")
    with pytest.raises(IndexModelMismatch, match="dimension 8 .*ember index rebuild"):
        built_index.upsert(
            built_index.records.values(), vectors=np.zeros((len(built_index.records), 8), "float32")
        )


_SAVER = textwrap.dedent(
    """
    import dataclasses, sys, numpy as np
    from ember.retrieval.collection_index import CollectionIndex
    index = CollectionIndex(sys.argv[1])
    records = list(index.records.values())
    rng = np.random.default_rng(0)
    print("ready", flush=True)
    for round in range(10**6):
        batch = [dataclasses.replace(r, chunk_id=10**6 + round * 50 + i) for i, r in enumerate(records[:50])]
        vectors = rng.standard_normal((50, index.dense.dim)).astype("float32")
        index.upsert(batch, vectors=vectors)
        index.save()
    """
)


def _assert_consistent(directory):
    index = CollectionIndex(directory)
    ids = set(index.records)
    assert index.chunk_ids() == ids
    assert set(index.bm25.ids.tolist()) == ids
    assert set(faiss.vector_to_array(index.dense.index.id_map).tolist()) == ids
    return len(ids)


def test_kill_during_save_leaves_a_loadable_index(built_index):
    """A real process saving in a loop is SIGKILLed at several moments; every time the index loads whole."""
    sizes = []
    for delay in (0.4, 0.9, 1.3, 1.75):
        proc = subprocess.Popen(
            [sys.executable, "-c", _SAVER, str(built_index.directory)], stdout=subprocess.PIPE, text=True
        )
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(delay)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        sizes.append(_assert_consistent(built_index.directory))
    assert sizes == sorted(sizes) and sizes[-1] > sizes[0], "the saver should have committed some generations"


def test_saves_use_unique_generation_names_and_keep_the_previous_one(built_index, small_records):
    def generations():
        return sorted(p.name for p in built_index.directory.iterdir() if p.name.startswith("gen-"))

    first = generations()
    built_index.delete([small_records[0].chunk_id])
    built_index.save(content_revision=7)
    second = generations()
    built_index.delete([small_records[1].chunk_id])
    built_index.save()
    third = generations()
    assert len(first) == 1 and len(second) == 2 and len(third) == 2
    assert second[0] == first[0] and third[0] == second[1]  # live and previous; the oldest removed
    assert third[1].split("-")[2] == str(os.getpid())  # number, pid, random suffix
    reopened = CollectionIndex(built_index.directory)
    assert reopened.content_revision == 7  # kept when a save names no revision
    assert small_records[1].chunk_id not in reopened.chunk_ids()


def test_a_start_empty_index_replaces_the_saved_generation_on_save(built_index, small_records, small_vectors):
    fresh = CollectionIndex(built_index.directory, start_empty=True)
    assert not fresh.exists and fresh.chunk_ids() == set()
    fresh.upsert(small_records[:5], vectors=small_vectors[:5])
    fresh.save(content_revision=3)
    reopened = CollectionIndex(built_index.directory)
    assert reopened.chunk_ids() == {r.chunk_id for r in small_records[:5]}
    assert reopened.content_revision == 3
