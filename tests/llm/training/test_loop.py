import math

import pytest
import torch
from pretrain_helpers import make_data, make_trainer

from ember.llm.inference.checkpoint import load_model
from ember.llm.inference.config import ModelConfig
from ember.llm.training.checkpoints import CheckpointError
from ember.llm.training.trainer import TrainConfig


@pytest.fixture
def data(tmp_path, tiny_tokenizer, documents):
    return make_data(tmp_path / "data", tiny_tokenizer, documents)


def test_the_loss_falls(data, tmp_path, tiny_tokenizer, tiny_config):
    trainer = make_trainer(data, tmp_path / "run", tiny_tokenizer, tiny_config, steps=12, lr=2e-2)
    losses = [r["loss"] for r in trainer.run()]
    assert math.isclose(losses[0], math.log(tiny_config.vocab_size), rel_tol=0.02)  # the near-zero head
    assert sum(losses[-3:]) / 3 < 0.85 * losses[0]
    assert (tmp_path / "run" / "curves.png").stat().st_size > 0


@pytest.mark.parametrize("optimizer", ["muon", "adamw"])
def test_resume_reproduces_the_uninterrupted_curve(data, tmp_path, tiny_tokenizer, tiny_config, optimizer):
    straight = make_trainer(data, tmp_path / "a", tiny_tokenizer, tiny_config, optimizer=optimizer)
    expected = [straight.train_step() for _ in range(6)]

    first = make_trainer(data, tmp_path / "b", tiny_tokenizer, tiny_config, optimizer=optimizer)
    got = [first.train_step() for _ in range(3)]
    first.save()
    torch.manual_seed(1234)  # the resumed process starts with other RNG states and a fresh model
    resumed = make_trainer(data, tmp_path / "b", tiny_tokenizer, tiny_config, optimizer=optimizer)
    assert resumed.resume() and resumed.step == 3
    got += [resumed.train_step() for _ in range(3)]
    assert max(abs(a - b) for a, b in zip(expected, got, strict=True)) <= 1e-6
    for p, q in zip(straight.model.parameters(), resumed.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-6)


def test_checkpoints_load_in_the_engine(data, tmp_path, tiny_tokenizer, tiny_config):
    trainer = make_trainer(data, tmp_path / "run", tiny_tokenizer, tiny_config, steps=2)
    trainer.run()
    path = trainer.save()
    model = load_model(path)
    ids = torch.tensor([tiny_tokenizer.encode("The lazy dog")])
    torch.testing.assert_close(model(ids), trainer.model.eval()(ids))


def test_sizes_that_do_not_divide_are_refused():
    with pytest.raises(ValueError, match="batch_tokens 100 is not a multiple of micro_batch 2 x seq_len 16"):
        TrainConfig(steps=1, seq_len=16, micro_batch=2, batch_tokens=100).accumulation(world=1)
    with pytest.raises(ValueError, match="micro_batch 2 x seq_len 16 x 2 process\\(es\\) = 64"):
        TrainConfig(steps=1, seq_len=16, micro_batch=2, batch_tokens=96).accumulation(world=2)
    with pytest.raises(ValueError, match="d_model 30 is not divisible by n_heads 4"):
        ModelConfig(d_model=30, n_heads=4, n_kv_heads=2)


def test_resuming_another_models_checkpoint_is_refused(data, tmp_path, tiny_tokenizer, tiny_config):
    trainer = make_trainer(data, tmp_path / "run", tiny_tokenizer, tiny_config)
    trainer.train_step()
    trainer.save()
    wider = ModelConfig(**{**tiny_config.to_dict(), "d_model": 64, "ffn_dim": 128})
    other = make_trainer(data, tmp_path / "run", tiny_tokenizer, wider)
    with pytest.raises(CheckpointError, match="saved from another model \\(d_model 32 there, 64 here"):
        other.resume()
