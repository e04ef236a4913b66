"""A hard character cap per chunk, whatever the token counter says (issue 16, D8)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ember.platform.ingest.chunker import MAX_CHARS_PER_TOKEN, Chunker
from ember.platform.ingest.document import Block
from ember.platform.ingest.tokens import RegexTokenCounter
from ember.platform.tables import Chunk

COUNTER = RegexTokenCounter()


def _check_capped_exact_slices(full: str, chunks, cap: int) -> None:  # noqa: ANN001
    for chunk in chunks:
        assert len(chunk.text) <= cap
        assert full[chunk.char_start : chunk.char_end] == chunk.text
    covered = set()
    for chunk in chunks:
        covered.update(range(chunk.char_start, chunk.char_end))
    assert all(i in covered for i, c in enumerate(full) if not c.isspace())  # nothing is dropped


def test_a_five_megabyte_run_without_spaces_is_split():
    run = "x" * 5_000_000  # one "word" to the word counter
    full, chunks = Chunker(COUNTER, chunk_size=384, overlap=64).chunk([Block(run)])
    cap = 384 * MAX_CHARS_PER_TOKEN
    assert len(chunks) == -(-len(run) // cap)
    assert "".join(c.text for c in chunks) == full
    _check_capped_exact_slices(full, chunks, cap)


def test_a_long_run_between_prose_is_split_and_the_prose_kept():
    prose = " ".join(f"word{i}" for i in range(300))
    blocks = [Block(prose), Block(prose + " " + "Q" * 20_000 + " " + prose), Block(prose)]
    full, chunks = Chunker(COUNTER, chunk_size=100, overlap=20).chunk(blocks)
    _check_capped_exact_slices(full, chunks, 100 * MAX_CHARS_PER_TOKEN)
    assert all(c.token_count <= 100 for c in chunks)


PIECES = st.sampled_from(["a", "bb", "ccc ", " ", "\n", "word ", "Ω", "x" * 300, "y" * 2000])


@settings(max_examples=150, deadline=None)
@given(
    blocks=st.lists(st.lists(PIECES, min_size=1, max_size=30).map("".join), min_size=1, max_size=4),
    chunk_size=st.integers(min_value=4, max_value=64),
    overlap_share=st.floats(min_value=0, max_value=0.5),
)
def test_every_chunk_is_capped_and_an_exact_slice(blocks, chunk_size, overlap_share):
    texts = [t for t in (b.strip() for b in blocks) if t]
    if not texts:
        return
    chunker = Chunker(COUNTER, chunk_size=chunk_size, overlap=int(chunk_size // 2 * overlap_share))
    full, chunks = chunker.chunk([Block(t) for t in texts])
    _check_capped_exact_slices(full, chunks, chunk_size * MAX_CHARS_PER_TOKEN)


def test_ingest_stores_capped_chunks(service, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "blob.txt").write_text("start " + "Z" * 1_000_000 + " end")
    service.ingest(str(folder), "blobs")
    with service.db.session() as session:
        longest = session.scalar(select(func.max(func.length(Chunk.text))))
    assert longest <= service.settings.chunk_size * MAX_CHARS_PER_TOKEN
