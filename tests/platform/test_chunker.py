import re

import pytest

from ember.platform.ingest.chunker import Chunker
from ember.platform.ingest.document import Block
from ember.platform.ingest.tokens import RegexTokenCounter

COUNTER = RegexTokenCounter()
WORDS = (
    "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma "
    "tau upsilon phi chi psi omega"
).split()


def prose(n_words: int, seed: int = 0) -> str:
    words = [f"{WORDS[(i * 7 + seed) % len(WORDS)]}{i}" for i in range(n_words)]
    sentences = [" ".join(words[i : i + 12]) + "." for i in range(0, n_words, 12)]
    return " ".join(sentences)


def test_chunks_respect_budget_and_never_cut_words():
    text = prose(3000)
    blocks = [Block(p) for p in re.findall(r"(?:\S+\s+){0,150}\S+", text)]
    full, chunks = Chunker(COUNTER, chunk_size=100, overlap=20).chunk(blocks)
    assert len(chunks) > 30
    words = set(full.split())
    for chunk in chunks:
        assert chunk.token_count <= 100
        assert chunk.token_count == COUNTER.count_tokens(chunk.text)
        assert full[chunk.char_start : chunk.char_end] == chunk.text
        assert set(chunk.text.split()) <= words  # every piece is a whole word
        assert chunk.char_start == 0 or full[chunk.char_start - 1].isspace()
        assert chunk.char_end == len(full) or full[chunk.char_end].isspace()


def test_neighbours_overlap_by_about_the_overlap_budget():
    blocks = [Block(prose(2000))]
    _, chunks = Chunker(COUNTER, chunk_size=120, overlap=30).chunk(blocks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.char_start < before.char_end
        shared = before.text[after.char_start - before.char_start :]
        assert after.text.startswith(shared)
        assert 20 <= COUNTER.count_tokens(shared) <= 30
    covered = max(c.char_end for c in chunks)
    assert covered == len(blocks[0].text)


def test_zero_overlap_tiles_the_text():
    blocks = [Block(prose(900))]
    _, chunks = Chunker(COUNTER, chunk_size=64, overlap=0).chunk(blocks)
    for before, after in zip(chunks, chunks[1:], strict=False):
        assert after.char_start > before.char_end
    assert " ".join(c.text for c in chunks) == blocks[0].text


def test_headings_start_new_chunks_and_are_kept():
    blocks = [
        Block("Install", ("Install",), is_heading=True),
        Block(prose(80, 1), ("Install",)),
        Block("Usage", ("Usage",), is_heading=True),
        Block(prose(80, 2), ("Usage",)),
    ]
    _, chunks = Chunker(COUNTER, chunk_size=200, overlap=20).chunk(blocks)
    assert [c.heading_path for c in chunks] == [("Install",), ("Usage",)]
    assert chunks[1].text.startswith("Usage\n\n")


def test_small_sections_share_a_chunk_under_their_common_heading():
    blocks = [
        Block("Guide", ("Guide",), is_heading=True),
        Block("Step one", ("Guide", "One"), is_heading=True),
        Block("Do a thing.", ("Guide", "One")),
        Block("Step two", ("Guide", "Two"), is_heading=True),
        Block("Do another.", ("Guide", "Two")),
    ]
    _, chunks = Chunker(COUNTER, chunk_size=200, overlap=20).chunk(blocks)
    assert len(chunks) == 1 and chunks[0].heading_path == ("Guide",)


def test_pages_are_never_crossed():
    blocks = [Block("Page one text.", page=1), Block("Page two text.", page=2)]
    _, chunks = Chunker(COUNTER, chunk_size=200, overlap=10).chunk(blocks)
    assert [(c.page, c.text) for c in chunks] == [(1, "Page one text."), (2, "Page two text.")]


def test_a_word_longer_than_the_budget_is_the_only_mid_word_cut():
    blob = "x" * 50_000
    _, chunks = Chunker(COUNTER, chunk_size=50, overlap=5).chunk([Block(f"before {blob} after")])
    assert "".join(c.text for c in chunks).replace(" ", "").replace("before", "").replace("after", "") == blob


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (100, 80), (100, -1)])
def test_invalid_budgets_are_rejected(size, overlap):
    with pytest.raises(ValueError, match="chunk size|overlap"):
        Chunker(COUNTER, size, overlap)
