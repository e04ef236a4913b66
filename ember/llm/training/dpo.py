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


def scored_positions(ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """(B, T) bool: the positions whose logits predict a supervised token (token t comes from t - 1)."""
    keep = torch.zeros_like(ids, dtype=torch.bool)
    keep[:, :-1] = loss_mask[:, 1:].bool()
    return keep


def completion_logps(logits: torch.Tensor, ids: torch.Tensor, loss_mask: torch.Tensor) -> torch.Tensor:
    """Summed log-probability (B,) of the supervised tokens of ``ids`` (B, T).

    ``logits`` are (B, T, V) for every position, or (N, V) for the ``scored_positions`` only (what
    ``model(ids, logits_at=scored_positions(ids, loss_mask))`` returns). The first token never counts.
    """
    keep = scored_positions(ids, loss_mask)
    if logits.dim() == 3:
        logits = logits[keep]
    targets = ids[:, 1:][loss_mask[:, 1:].bool()]
    token_logps = torch.log_softmax(logits.float(), dim=-1).gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    rows = keep.nonzero()[:, 0]
    return torch.zeros(ids.shape[0], device=logits.device).index_add(0, rows, token_logps)


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
