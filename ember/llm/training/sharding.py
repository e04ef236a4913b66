"""FSDP (PyTorch's ``fully_shard``) for models whose weights, gradients and optimizer state do not fit
one device: each process holds 1/N of every block and gathers a block only while it computes.

Checkpoints stay whole and portable: weights and optimizer states are gathered into full, name-keyed
dicts on the main process, so the engine loads a sharded run's model as it is, and ``load_full_state``
spreads them back over however many processes resume it.
"""

from __future__ import annotations

import torch
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor

from ember.llm.inference.checkpoint import model_from_state
from ember.llm.inference.model import Transformer

_FULL = StateDictOptions(full_state_dict=True, cpu_offload=True)


def shard_model(model: Transformer) -> Transformer:
    """Shard every block, then the rest (embeddings, head, final norm), over the default process group."""
    if not all(p.requires_grad for p in model.parameters()):
        raise ValueError("FSDP trains whole models here; LoRA adapters are small enough for DDP")
    for block in model.layers:
        fully_shard(block)
    fully_shard(model)
    return model


def is_sharded(model: torch.nn.Module) -> bool:
    return any(isinstance(p, DTensor) for p in model.parameters())


def full_model(model: Transformer) -> Transformer | None:
    """A plain CPU copy of the whole weights on the main process (None elsewhere); all processes call it."""
    state = get_model_state_dict(model, options=_FULL)
    if not state:
        return None
    return model_from_state(model.config, {k: v.float() for k, v in state.items()})


def full_optimizer_states(model: Transformer, optimizers: list[torch.optim.Optimizer]) -> list[dict]:
    """Each optimizer's state, whole and keyed by parameter name (main process); every process calls it."""
    return [get_optimizer_state_dict(model, optimizer, options=_FULL) for optimizer in optimizers]


def load_full_state(
    model: Transformer, optimizers: list[torch.optim.Optimizer], weights: dict, optimizer_states: list[dict]
) -> None:
    """Spread whole weights and optimizer states (as saved above) over this run's shards."""
    options = StateDictOptions(full_state_dict=True)
    set_model_state_dict(model, weights, options=options)
    for optimizer, state in zip(optimizers, optimizer_states, strict=True):
        set_optimizer_state_dict(model, optimizer, state, options=options)


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """The full value of a sharded tensor (a collective), or the tensor itself."""
    return tensor.full_tensor() if isinstance(tensor, DTensor) else tensor


def like(full: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
    """``full`` (the same on every process) laid out as ``reference``: this process's shard of it."""
    if not isinstance(reference, DTensor):
        return full
    from torch.distributed.tensor import distribute_tensor

    return distribute_tensor(full, reference.device_mesh, reference.placements, src_data_rank=None)
