"""Direct preference optimisation: the sigmoid loss and its metrics, under TRL's definitions.

For a pair (chosen y_w, rejected y_l) with log-probabilities summed over the completion's supervised
tokens, under the policy and a frozen reference:

    loss = -log sigmoid(beta * ((logp_w - ref_w) - (logp_l - ref_l)))
    rewards/chosen = beta * (logp_w - ref_w), rewards/rejected = beta * (logp_l - ref_l)
    rewards/margins = chosen - rejected, rewards/accuracies = share of pairs with chosen > rejected

each metric the mean over the batch, as TRL's DPOTrainer logs them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


def completion_logps(logits: torch.Tensor, ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Summed log-probability (B,) of the supervised tokens of ``ids`` (B, T) under ``logits`` (B, T, V).

    Token t is predicted by the logits at t - 1, so the mask of the first token never counts.
    """
    targets, mask = ids[:, 1:], loss_mask[:, 1:].to(logits.dtype)
    logps = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    token_logps = logps.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return (token_logps * mask).sum(-1)


@dataclass
class DPOOutput:
    loss: torch.Tensor  # scalar, mean over pairs
    metrics: dict[str, float]


def dpo_loss(
    policy_chosen: torch.Tensor,
    policy_rejected: torch.Tensor,
    reference_chosen: torch.Tensor,
    reference_rejected: torch.Tensor,
    beta: float = 0.1,
) -> DPOOutput:
    """The sigmoid DPO loss of a batch of pairs (each argument a (B,) tensor of summed log-probs)."""
    if beta <= 0:
        raise ValueError(f"beta must be positive, got {beta}")
    chosen_ratio = policy_chosen - reference_chosen
    rejected_ratio = policy_rejected - reference_rejected
    loss = -F.logsigmoid(beta * (chosen_ratio - rejected_ratio)).mean()
    chosen_rewards, rejected_rewards = beta * chosen_ratio.detach(), beta * rejected_ratio.detach()
    metrics = {
        "loss": loss.item(),
        "rewards/chosen": chosen_rewards.mean().item(),
        "rewards/rejected": rejected_rewards.mean().item(),
        "rewards/accuracies": (chosen_rewards > rejected_rewards).float().mean().item(),
        "rewards/margins": (chosen_rewards - rejected_rewards).mean().item(),
        "logps/chosen": policy_chosen.detach().mean().item(),
        "logps/rejected": policy_rejected.detach().mean().item(),
    }
    return DPOOutput(loss, metrics)
