import math

import pytest
import torch

from ember.llm.inference.sampling import SamplingParams, apply_repetition_penalty, filter_logits, sample

LOGITS = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.07, 0.03]]))


def kept(params: SamplingParams) -> list[int]:
    return torch.isfinite(filter_logits(LOGITS, params))[0].nonzero().flatten().tolist()


def test_top_k_top_p_min_p_keep_the_right_tokens():
    assert kept(SamplingParams(temperature=1.0, top_k=2)) == [0, 1]
    assert kept(SamplingParams(temperature=1.0, top_p=0.7)) == [0, 1]  # 0.5 < 0.7, 0.75 reaches it
    assert kept(SamplingParams(temperature=1.0, top_p=0.5)) == [0]
    assert kept(SamplingParams(temperature=1.0, min_p=0.2)) == [0, 1, 2]  # p >= 0.2 * 0.5
    assert kept(SamplingParams(temperature=1.0)) == [0, 1, 2, 3, 4]


def test_repetition_penalty_divides_positive_and_multiplies_negative_logits():
    logits = torch.tensor([[2.0, -2.0, 2.0]])
    seen = torch.tensor([[True, True, False]])
    assert apply_repetition_penalty(logits, seen, 2.0).tolist() == [[1.0, -4.0, 2.0]]


def test_greedy_logprob_and_seeded_sampling_frequencies():
    token, logprob = sample(LOGITS, SamplingParams())
    assert token.item() == 0 and math.isclose(logprob.item(), math.log(0.5), rel_tol=1e-5)
    generator = torch.Generator().manual_seed(0)
    draws = [
        sample(LOGITS, SamplingParams(temperature=1.0), generator=generator)[0].item() for _ in range(2000)
    ]
    assert abs(draws.count(0) / 2000 - 0.5) < 0.05 and abs(draws.count(4) / 2000 - 0.03) < 0.02


@pytest.mark.parametrize(
    "field, value", [("max_tokens", 0), ("temperature", -1), ("top_p", 0), ("min_p", 1), ("top_k", -1)]
)
def test_bad_parameters_are_named(field, value):
    with pytest.raises(ValueError, match=field):
        SamplingParams(**{field: value})


def test_a_vanishing_temperature_decodes_greedily_instead_of_failing():
    # Found by the schema fuzz: 5e-324 made logits / temperature inf, and multinomial refused the nan.
    logits = torch.tensor([[1.0, 3.0, 2.0], [0.5, -1.0, 4.0]])
    for temperature in (5e-324, 1e-300, 1e-9):
        tokens, logprobs = sample(logits, SamplingParams(temperature=temperature))
        assert tokens.tolist() == [1, 2] and torch.isfinite(logprobs).all()
