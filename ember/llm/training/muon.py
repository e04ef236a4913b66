"""Muon: SGD momentum whose update is orthogonalised (Newton-Schulz), for the 2-D hidden weights.

Embeddings, the LM head and the norm gains stay on AdamW (see optimizers.py); Muon's update shape
only makes sense for matrices that map one hidden space to another.
"""

from __future__ import annotations

import torch

from ember.llm.training.sharding import like, whole

# Coefficients of the quintic iteration that pushes every singular value towards 1 in five steps.
_A, _B, _C = 3.4445, -4.7750, 2.0315


def orthogonalize(matrix: torch.Tensor, steps: int = 5) -> torch.Tensor:
    """An approximately orthogonal matrix with ``matrix``'s singular vectors (U V^T)."""
    x = matrix.bfloat16() if matrix.is_cuda else matrix.float()
    wide = x.shape[0] > x.shape[1]
    if wide:
        x = x.T
    x = x / (x.norm() + 1e-7)
    for _ in range(steps):
        gram = x @ x.T
        x = _A * x + (_B * gram + _C * gram @ gram) @ x
    return (x.T if wide else x).to(matrix.dtype)


class Muon(torch.optim.Optimizer):
    """Nesterov momentum, orthogonalised, scaled by sqrt(max(1, rows / cols)); decoupled weight decay."""

    def __init__(
        self, params, lr: float = 0.02, momentum: float = 0.95, weight_decay: float = 0.0, steps: int = 5
    ):
        super().__init__(
            params, {"lr": lr, "momentum": momentum, "weight_decay": weight_decay, "steps": steps}
        )

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            for param in group["params"]:
                if param.grad is None:
                    continue
                if param.ndim != 2:
                    raise ValueError(f"Muon takes 2-D weights only, got shape {tuple(param.shape)}")
                state = self.state[param]
                if "momentum" not in state:
                    state["momentum"] = torch.zeros_like(param)
                buffer = state["momentum"]
                buffer.lerp_(param.grad, 1 - group["momentum"])
                update = param.grad.lerp(buffer, group["momentum"])
                # under FSDP each process holds rows of the matrix: orthogonalise the whole, keep its rows
                update = like(orthogonalize(whole(update), group["steps"]), param)
                scale = max(1.0, param.shape[0] / param.shape[1]) ** 0.5
                if group["weight_decay"]:
                    param.mul_(1 - group["lr"] * group["weight_decay"])
                param.add_(update, alpha=-group["lr"] * scale)
