import json
from collections import Counter

import pytest

from ember.llm.tokenizer import DEFAULT_SPECIAL_TOKENS, GPT2_PATTERN, Tokenizer, count_pretokens, train_merges
from ember.llm.tokenizer.corpus import iter_texts
from tests.llm.test_tokenizer_data import multilingual_text


def test_hand_example_merges_follow_the_documented_tie_rule():
    corpus = Counter({"low": 5, "lower": 2, "newest": 6, "widest": 3})
    # es/st tie at 9: ("e","s") is smaller; then est (9); lo/ow tie at 7: ("l","o") is smaller; then low.
    assert train_merges(corpus, 4) == [b"es", b"est", b"lo", b"low"]


def test_training_stops_when_no_pair_is_left():
    assert train_merges(Counter({"ab": 3}), 10) == [b"ab"]


def test_trained_vocabulary_has_the_requested_size_and_special_tokens_last():
    tok = Tokenizer.train([multilingual_text(100)], 600)
    assert tok.vocab_size == 600
    first_special = 600 - len(DEFAULT_SPECIAL_TOKENS)
    assert sorted(tok.special_tokens.values()) == list(range(first_special, 600))
    assert tok.bos_id == tok.special_tokens["<|bos|>"] and tok.eos_ids == {tok.special_tokens["<|eos|>"]}


def test_too_small_vocab_is_rejected_with_a_clear_error():
    with pytest.raises(ValueError, match="vocab_size 100"):
        Tokenizer.train(["abc"], 100)


def test_parallel_counting_equals_serial_counting():
    texts = [multilingual_text(30, seed) for seed in range(8)]
    assert count_pretokens(texts, GPT2_PATTERN, workers=2) == count_pretokens(texts, GPT2_PATTERN, workers=1)


def test_save_and_load_round_trip(tmp_path):
    text = multilingual_text(60)
    tok = Tokenizer.train([text], 500, pattern=GPT2_PATTERN, special_tokens=["<|eos|>"])
    tok.save(tmp_path / "tok.json")
    again = Tokenizer.load(tmp_path / "tok.json")
    assert again.encode(text) == tok.encode(text)
    assert again.special_tokens == {"<|eos|>": 499} and again.eos_id == 499 and again.pattern == GPT2_PATTERN


def test_load_rejects_foreign_json(tmp_path):
    path = tmp_path / "x.json"
    path.write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not an Ember tokenizer"):
        Tokenizer.load(path)


def test_corpus_streams_folders_jsonl_and_text_within_a_byte_budget(tmp_path):
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.txt").write_text("alpha " * 10)
    (tmp_path / "docs" / "b.bin").write_bytes(b"\0\1\2binary")
    (tmp_path / "data.jsonl").write_text(
        json.dumps({"text": "über"}) + "\n\n" + json.dumps({"text": "zwei"}) + "\n"
    )
    texts = list(iter_texts([tmp_path / "docs", tmp_path / "data.jsonl"]))
    assert texts == ["alpha " * 10, "über", "zwei"]
    budgeted = list(iter_texts([tmp_path / "docs", tmp_path / "data.jsonl"], byte_budget=62))
    assert budgeted == ["alpha " * 10, "ü"]
    assert sum(len(t.encode()) for t in budgeted) == 62


def test_corpus_names_the_bad_jsonl_line(tmp_path):
    path = tmp_path / "bad.jsonl"
    path.write_text('{"text": "ok"}\n{"body": "no text"}\n')
    with pytest.raises(ValueError, match=r"bad.jsonl:2: expected a JSON object with a 'text' string"):
        list(iter_texts([path]))
