"""The DPO loss and its TRL-named metrics against a hand computation on fixed log-probs."""

import math

import pytest
import torch

from ember.llm.training.dpo import completion_logps, dpo_loss


def _log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_loss_and_metrics_equal_the_hand_computation():
    policy_chosen, policy_rejected = torch.tensor([-10.0, -4.0, -7.5]), torch.tensor([-12.0, -3.0, -9.0])
    ref_chosen, ref_rejected = torch.tensor([-11.0, -4.5, -7.0]), torch.tensor([-11.5, -2.0, -8.0])
    out = dpo_loss(policy_chosen, policy_rejected, ref_chosen, ref_rejected, beta=0.5)
    # per pair: chosen ratio, rejected ratio -> (1, -0.5), (0.5, -1), (-0.5, -1)
    chosen = [0.5 * r for r in (1.0, 0.5, -0.5)]
    rejected = [0.5 * r for r in (-0.5, -1.0, -1.0)]
    losses = [-_log_sigmoid(c - r) for c, r in zip(chosen, rejected, strict=True)]
    assert out.loss.item() == pytest.approx(sum(losses) / 3, abs=1e-6)
    assert out.metrics["rewards/chosen"] == pytest.approx(sum(chosen) / 3, abs=1e-6)
    assert out.metrics["rewards/rejected"] == pytest.approx(sum(rejected) / 3, abs=1e-6)
    assert out.metrics["rewards/margins"] == pytest.approx((sum(chosen) - sum(rejected)) / 3, abs=1e-6)
    assert out.metrics["rewards/accuracies"] == pytest.approx(1.0)
    flipped = dpo_loss(policy_rejected, policy_chosen, ref_rejected, ref_chosen, beta=0.5)
    assert flipped.metrics["rewards/accuracies"] == pytest.approx(0.0)
    assert flipped.loss.item() > out.loss.item()


def test_loss_gradient_pushes_chosen_up_and_rejected_down():
    chosen = torch.tensor([-5.0], requires_grad=True)
    rejected = torch.tensor([-5.0], requires_grad=True)
    dpo_loss(chosen, rejected, torch.tensor([-5.0]), torch.tensor([-5.0]), beta=0.1).loss.backward()
    # d/dx -log sigmoid(beta (x - y)) at x = y is -beta / 2
    assert chosen.grad.item() == pytest.approx(-0.05) and rejected.grad.item() == pytest.approx(0.05)


def test_completion_logps_sum_only_the_masked_targets():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 7)
    ids = torch.tensor([[1, 2, 3, 4], [5, 6, 0, 1]])
    mask = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0]])  # the first token's mask never counts
    logps = torch.log_softmax(logits, -1)
    expected = [logps[0, 1, 3] + logps[0, 2, 4], logps[1, 0, 6] + logps[1, 1, 0]]
    assert torch.allclose(completion_logps(logits, ids, mask), torch.stack(expected), atol=1e-6)


def test_beta_must_be_positive():
    zeros = torch.zeros(1)
    with pytest.raises(ValueError, match="beta"):
        dpo_loss(zeros, zeros, zeros, zeros, beta=0.0)
