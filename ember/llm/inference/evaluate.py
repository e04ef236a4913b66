"""Language-modelling quality: bits per byte of held-out text (tokenizer-independent).

The one definition, used by ``ember eval llm``, the quantization checks and the training val loop:
the nats of every predicted token summed, divided by ln 2 and by the UTF-8 bytes those tokens
stand for. Special tokens stand for no bytes, and predictions of them are not counted, so a
document separator (BOS) neither helps nor hurts the score.
"""

from __future__ import annotations

import math

import torch

from ember.llm.inference.fused_decode import kv_cache_dtype
from ember.llm.inference.kv_cache import KVCache
from ember.llm.inference.model import Transformer


def token_byte_lengths(tokenizer) -> torch.Tensor:
    """UTF-8 byte length of every token id (int64, size vocab); 0 for special and unused ids."""
    special = set(tokenizer.special_tokens.values())
    lengths = [0 if i in special else _byte_length(tokenizer, i) for i in range(tokenizer.vocab_size)]
    return torch.tensor(lengths, dtype=torch.int64)


def _byte_length(tokenizer, token_id: int) -> int:
    try:
        return len(tokenizer.token_bytes(token_id))
    except (IndexError, KeyError):  # a gap in the id space
        return 0


def nats_and_bytes(
    logits: torch.Tensor, targets: torch.Tensor, byte_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Summed nats and bytes of the scored ``targets`` (any shape; ids < 0 are padding).

    ``logits`` has the targets' shape plus the vocabulary. Returns two scalar float64 tensors, so
    the sums of many batches (and of DDP ranks) add up exactly.
    """
    safe = targets.clamp(min=0)
    lengths = torch.where(targets >= 0, byte_lengths.to(targets.device)[safe], 0)
    scored = lengths > 0
    nats = torch.nn.functional.cross_entropy(
        logits.reshape(-1, logits.shape[-1]).float(), safe.reshape(-1), reduction="none"
    ).view_as(targets)
    return nats[scored].double().sum(), lengths.double().sum()


@torch.no_grad()  # not inference_mode: FSDP reuses the gathered weights' buffers for training later
def batch_nats_and_bytes(
    model: Transformer, inputs: torch.Tensor, targets: torch.Tensor, byte_lengths: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """nats_and_bytes of the model's predictions for a (B, T) batch of inputs and targets."""
    return nats_and_bytes(model(inputs), targets, byte_lengths)


@torch.inference_mode()
def bits_per_byte(
    model: Transformer, tokenizer, text: str, window: int = 1024, step_by_step: bool = False
) -> float:
    """Negative log2-likelihood of ``text``'s tokens (after the first) per UTF-8 byte they stand for.

    ``step_by_step`` scores one token per forward pass through the KV cache, the way generation
    computes them: quantized layers then run their decode kernels, which also quantize activations.
    """
    ids = tokenizer.encode(text)
    if len(ids) < 2:
        raise ValueError("text is too short to score: it needs at least two tokens")
    lengths = token_byte_lengths(tokenizer)
    score = _window_by_steps if step_by_step else _window_at_once
    nats = bytes_ = 0.0
    for start in range(0, len(ids) - 1, window):
        window_nats, window_bytes = score(model, torch.tensor([ids[start : start + window + 1]]), lengths)
        nats, bytes_ = nats + window_nats.item(), bytes_ + window_bytes.item()
    if bytes_ == 0:
        raise ValueError("text has no bytes to score: every predicted token is a special token")
    return nats / math.log(2) / bytes_


def _window_at_once(model: Transformer, chunk: torch.Tensor, lengths: torch.Tensor):
    return batch_nats_and_bytes(model, chunk[:, :-1], chunk[:, 1:], lengths)


def _window_by_steps(model: Transformer, chunk: torch.Tensor, lengths: torch.Tensor):
    weight = next(p for p in model.parameters() if p.is_floating_point())
    cache = KVCache(model.config, 1, chunk.shape[1], kv_cache_dtype(model, weight.dtype), weight.device)
    steps = []
    for position in range(chunk.shape[1] - 1):
        token, at = chunk[:, position : position + 1], torch.tensor([[position]])
        steps.append(model(token, at, cache, kv_len=position + 1, sees_whole_cache=True)[:, -1:])
    return nats_and_bytes(torch.cat(steps, dim=1), chunk[:, 1:], lengths)
