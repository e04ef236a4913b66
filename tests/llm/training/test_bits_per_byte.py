import math

import torch

from ember.llm.inference.evaluate import bits_per_byte, nats_and_bytes, token_byte_lengths
from ember.llm.inference.model import Transformer


def test_special_tokens_score_no_bytes(tiny_tokenizer):
    lengths = token_byte_lengths(tiny_tokenizer)
    assert lengths.shape == (tiny_tokenizer.vocab_size,)
    for token_id in tiny_tokenizer.special_tokens.values():
        assert lengths[token_id] == 0
    assert lengths[ord("a")] == 1
    assert (lengths[:256] == 1).all()


def test_predictions_of_special_tokens_are_not_counted(tiny_tokenizer):
    lengths = token_byte_lengths(tiny_tokenizer)
    bos = tiny_tokenizer.bos_id
    logits = torch.zeros(1, 3, tiny_tokenizer.vocab_size)  # uniform: every prediction costs ln V
    targets = torch.tensor([[ord("a"), bos, -1]])
    nats, bytes_ = nats_and_bytes(logits, targets, lengths)
    assert bytes_.item() == 1
    assert math.isclose(nats.item(), math.log(tiny_tokenizer.vocab_size), rel_tol=1e-6)


def test_bits_per_byte_is_the_same_quantity_at_once_and_step_by_step(tiny_tokenizer, tiny_config):
    torch.manual_seed(0)
    model = Transformer(tiny_config).eval()
    text = "The lazy dog reads Python's documentation."
    at_once = bits_per_byte(model, tiny_tokenizer, text)
    assert math.isclose(at_once, bits_per_byte(model, tiny_tokenizer, text, step_by_step=True), rel_tol=1e-4)
    ids = tiny_tokenizer.encode(text)
    logits = model(torch.tensor([ids[:-1]]))
    nats = torch.nn.functional.cross_entropy(logits[0], torch.tensor(ids[1:]), reduction="sum").item()
    scored = len(text.encode()) - len(tiny_tokenizer.token_bytes(ids[0]))
    assert math.isclose(at_once, nats / math.log(2) / scored, rel_tol=1e-5)
