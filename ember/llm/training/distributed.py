"""Processes of a run under torchrun: gloo on CPU, NCCL on CUDA; one process when WORLD_SIZE is unset."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass
class Distributed:
    rank: int
    world: int
    device: torch.device

    @classmethod
    def single(cls, device: str | None = None) -> Distributed:
        return cls(0, 1, torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu")))

    @classmethod
    def from_environment(cls, device: str | None = None) -> Distributed:
        """Join the process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK), if any."""
        world = int(os.environ.get("WORLD_SIZE", "1"))
        if world == 1:
            return cls.single(device)
        kind = device or ("cuda" if torch.cuda.is_available() else "cpu")
        local = int(os.environ.get("LOCAL_RANK", "0"))
        if kind == "cuda":
            torch.cuda.set_device(local)
        if not dist.is_initialized():
            dist.init_process_group("nccl" if kind == "cuda" else "gloo")
        return cls(
            dist.get_rank(), world, torch.device(kind, local) if kind == "cuda" else torch.device("cpu")
        )

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, model: torch.nn.Module) -> torch.nn.Module:
        """DistributedDataParallel over ``model`` when there are several processes."""
        if self.world == 1:
            return model
        from torch.nn.parallel import DistributedDataParallel

        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(model, device_ids=ids)

    def no_sync(self, module: torch.nn.Module, skip: bool):
        """Skip the gradient all-reduce for accumulation micro-steps before the last."""
        inner = getattr(module, "_orig_mod", module)  # through torch.compile
        if skip and hasattr(inner, "no_sync"):
            return inner.no_sync()
        return contextlib.nullcontext()

    def mean(self, value: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            value = value.clone()
            dist.all_reduce(value, op=dist.ReduceOp.AVG if value.is_cuda else dist.ReduceOp.SUM)
            if not value.is_cuda:
                value /= self.world
        return value

    def sum(self, value: torch.Tensor) -> torch.Tensor:
        if self.world > 1:
            value = value.clone()
            dist.all_reduce(value)
        return value

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def close(self) -> None:
        if self.world > 1 and dist.is_initialized():
            dist.destroy_process_group()
