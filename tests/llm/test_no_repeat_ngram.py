"""No-repeat n-gram blocking and per-request logits processors in the real engine (SmolLM2 weights)."""

from __future__ import annotations

import pytest
import torch

from ember.llm.inference.engine import Engine
from ember.llm.inference.sampling import NoRepeatNGram, SamplingParams

CYCLE = [1000, 2000, 3000]  # a loop forced onto the model: A B C A B C ...


def looping(generated: list[int], logits: torch.Tensor) -> torch.Tensor:
    """Pushes the model into a three-token loop, the way a small model falls into one."""
    return logits.index_add(-1, torch.tensor([CYCLE[len(generated) % 3]]), torch.tensor([100.0]))


def ngrams(ids: list[int], n: int) -> list[tuple[int, ...]]:
    return [tuple(ids[i : i + n]) for i in range(len(ids) - n + 1)]


@pytest.fixture(scope="module")
def engine(smollm2, smollm2_tokenizer) -> Engine:
    return Engine(smollm2, smollm2_tokenizer)


def test_blocking_stops_a_looping_output(engine):
    free = SamplingParams(max_tokens=12, logits_processor=looping, stop_token_ids=set())
    assert engine.generate(["The bridge"], free)[0].token_ids == CYCLE * 4
    blocked = SamplingParams(
        max_tokens=12, logits_processor=looping, no_repeat_ngram_size=3, stop_token_ids=set()
    )
    for generation in engine.generate(["The bridge", "A much longer prompt about a bridge"], blocked):
        ids = generation.token_ids
        assert len(ids) == 12 and ids[:3] == CYCLE
        assert len(set(ngrams(ids, 3))) == len(ngrams(ids, 3)), ids


def test_the_block_counts_only_generated_tokens():
    logits = torch.zeros(10)
    assert NoRepeatNGram(2)([4, 5, 6, 4], logits)[5] == float("-inf")
    assert NoRepeatNGram(2)([4, 5, 6, 4], logits).isfinite().sum() == 9
    assert torch.equal(NoRepeatNGram(3)([4, 5], logits), logits)


def test_bad_sizes_and_missing_ids_are_clear_errors():
    with pytest.raises(ValueError, match="no_repeat_ngram_size"):
        SamplingParams(no_repeat_ngram_size=-1)
    from ember.llm.inference.sampling import sample

    with pytest.raises(ValueError, match="generated token ids"):
        sample(torch.zeros(1, 10), SamplingParams(no_repeat_ngram_size=2))
