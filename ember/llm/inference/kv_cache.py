"""A preallocated key/value cache, written at per-row absolute positions."""

from __future__ import annotations

import torch

from ember.llm.inference.config import ModelConfig


class KVCache:
    """Keys and values of every layer, shaped (batch, kv_heads, max_len, head_dim).

    Writes go through index_put at each row's own positions, so rows of one batch may sit at
    different lengths and the decode step keeps a static shape (no host sync, graph-capturable).
    """

    def __init__(
        self,
        config: ModelConfig,
        batch_size: int,
        max_len: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str = "cpu",
    ) -> None:
        if max_len > config.max_seq_len:
            raise ValueError(f"max_len {max_len} exceeds the model's max_seq_len {config.max_seq_len}")
        shape = (batch_size, config.n_kv_heads, max_len, config.head_dim)
        self.k = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layers)]
        self.v = [torch.zeros(shape, dtype=dtype, device=device) for _ in range(config.n_layers)]
        self.batch_size, self.max_len = batch_size, max_len
        self._rows = torch.arange(batch_size, device=device).unsqueeze(1)

    def update(
        self, layer: int, positions: torch.Tensor, k: torch.Tensor, v: torch.Tensor, kv_len: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Store k, v (B, T, kv_heads, head_dim) at ``positions`` (B, T); return the readable cache."""
        rows = self._rows[: k.shape[0]]
        # Advanced indices around a slice put (B, T) first: the target view is (B, T, heads, dim).
        self.k[layer][rows, :, positions] = k.to(self.k[layer].dtype)
        self.v[layer][rows, :, positions] = v.to(self.v[layer].dtype)
        end = self.max_len if kv_len is None else kv_len
        return self.k[layer][: k.shape[0], :, :end], self.v[layer][: k.shape[0], :, :end]
