import json

import numpy as np
import pytest

from ember.llm.training.loader import PackedBatches, validation_batches
from ember.llm.training.prepare import prepare
from ember.llm.training.shards import ShardError, open_split
from ember.llm.training.sources import SourceError, iter_documents


@pytest.fixture
def data(tmp_path, tiny_tokenizer, documents):
    named = [(f"doc{i}", text) for i, text in enumerate(documents)]
    prepare(named, tiny_tokenizer, tmp_path / "data", val_fraction=0.2, show_progress=False)
    return tmp_path / "data"


def test_prepare_holds_out_whole_documents(data, tiny_tokenizer, documents):
    index = json.loads((data / "index.json").read_text())
    train, val = open_split(data, "train"), open_split(data, "val")
    assert index["splits"]["val"][0]["documents"] == val[0].doc_starts.size > 0
    assert train[0].doc_starts.size + val[0].doc_starts.size == len(documents)
    # every document comes back whole, BOS first, in one split or the other
    bos = tiny_tokenizer.bos_id
    texts = []
    for shard in train + val:
        for piece in np.split(np.asarray(shard.tokens), shard.doc_starts[1:]):
            assert piece[0] == bos
            texts.append(tiny_tokenizer.decode(piece[1:].tolist()))
    assert sorted(texts) == sorted(documents)


def test_packed_rows_are_full_and_start_at_a_document(data, tiny_tokenizer):
    shards = open_split(data, "train")
    longest = int(np.diff(np.append(shards[0].doc_starts, shards[0].tokens.size)).max())
    batches = PackedBatches(shards, rows=4, seq_len=longest, seed=3)
    for _ in range(20):
        inputs, targets = batches.next_batch()
        assert inputs.shape == targets.shape == (4, longest)
        assert (inputs[:, 1:] == targets[:, :-1]).all()
        assert (inputs[:, 0] == tiny_tokenizer.bos_id).all()  # no document is cut into segments here


def test_cursor_resumes_the_same_batches(data):
    shards = open_split(data, "train")
    straight = PackedBatches(shards, rows=2, seq_len=24, seed=7)
    expected = [straight.next_batch()[0] for _ in range(30)]  # several epochs
    first = PackedBatches(shards, rows=2, seq_len=24, seed=7)
    got = [first.next_batch()[0] for _ in range(11)]
    resumed = PackedBatches(shards, rows=2, seq_len=24, seed=0)
    resumed.load_state_dict(json.loads(json.dumps(first.state_dict())))
    got += [resumed.next_batch()[0] for _ in range(19)]
    assert all((a == b).all() for a, b in zip(expected, got, strict=True))
    other_seed = PackedBatches(shards, rows=2, seq_len=24, seed=8)
    assert not all((a == other_seed.next_batch()[0]).all() for a in expected[:3])


def test_ranks_split_the_rows_of_one_pass(data):
    shards = open_split(data, "train")
    both = PackedBatches(shards, rows=4, seq_len=16, seed=1).next_batch()[0]
    halves = [
        PackedBatches(shards, rows=2, seq_len=16, seed=1, rank=r, world=2).next_batch()[0] for r in (0, 1)
    ]
    assert (both[:2] == halves[0]).all() and (both[2:] == halves[1]).all()


def test_validation_scores_every_token_once(data):
    shards = open_split(data, "val")
    batches = list(validation_batches(shards, rows=2, seq_len=8))
    assert sum(t.numel() for _, t in batches) == shards[0].tokens.size - 1


def test_missing_and_truncated_shards_are_named(data):
    shard = data / "train_0000.bin"
    shard.write_bytes(shard.read_bytes()[:-2])
    with pytest.raises(ShardError, match="train_0000.bin.*truncated"):
        open_split(data, "train")
    shard.unlink()
    with pytest.raises(ShardError, match="train_0000.bin.*missing"):
        open_split(data, "train")
    (data / "index.json").unlink()
    with pytest.raises(ShardError, match="no shard index"):
        open_split(data, "train")


def test_bad_sources_name_the_file(tmp_path):
    binary = tmp_path / "notes.txt"
    binary.write_bytes(b"caf\xe9 au lait")
    with pytest.raises(SourceError, match="notes.txt: not UTF-8"):
        list(iter_documents([binary]))
    records = tmp_path / "rows.jsonl"
    records.write_text('{"text": "fine"}\n{"body": "no text field"}\n')
    with pytest.raises(SourceError, match="rows.jsonl:2: no string field 'text'"):
        list(iter_documents([records]))
    empty = tmp_path / "empty.md"
    empty.write_text("  \n")
    with pytest.raises(SourceError, match="empty.md: no non-empty documents"):
        list(iter_documents([empty]))
    records.write_text('{"body": "chosen field"}\n')
    assert list(iter_documents([records], field="body")) == [(f"{records}:1", "chosen field")]


def test_parquet_rows_are_documents_of_the_chosen_column(tmp_path):
    pa = pytest.importorskip("pyarrow")  # installed with the dev extras (datasets, via trl)
    import pyarrow.parquet as pq

    table = pa.table({"id": [1, 2, 3], "body": ["first page", None, "third page"]})
    pq.write_table(table, tmp_path / "pages.parquet")
    file = tmp_path / "pages.parquet"
    # a null row is an empty document and is skipped, like an empty text file
    assert list(iter_documents([file], column="body")) == [
        (f"{file}#0", "first page"),
        (f"{file}#2", "third page"),
    ]
    with pytest.raises(SourceError, match=r"pages.parquet: no column 'text' \(columns: id, body\)"):
        list(iter_documents([file]))
    with pytest.raises(SourceError, match="pages.parquet: row 0 of column 'id' is not text"):
        list(iter_documents([file], column="id"))
