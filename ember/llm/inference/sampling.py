"""Turning logits into tokens: greedy, temperature, top-k, top-p, min-p, repetition penalty, no-repeat
n-gram blocking, and a per-request logits processor (e.g. constrained tool-call decoding)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch

# Below this temperature sampling is greedy in all but name, and logits / temperature can overflow to
# inf (then softmax gives nan): such requests decode greedily.
GREEDY_BELOW = 1e-6

# (the row's generated token ids so far, its (V,) logits) → logits; a banned token gets -inf.
LogitsProcessor = Callable[[list[int], torch.Tensor], torch.Tensor]


@dataclass
class SamplingParams:
    """How to pick tokens and when to stop. ``temperature == 0`` (or below 1e-6) means greedy decoding."""

    max_tokens: int = 256
    temperature: float = 0.0
    top_k: int = 0
    top_p: float = 1.0
    min_p: float = 0.0
    repetition_penalty: float = 1.0
    seed: int | None = None
    stop: list[str] = field(default_factory=list)
    # None: the tokenizer's end-of-turn ids; pass an empty set to ignore them.
    stop_token_ids: set[int] | None = None
    logprobs: bool = False
    # Ban any token that would repeat an n-gram the output already holds (0: off). Only the generated
    # text counts, so quoting the prompt's passages stays free.
    no_repeat_ngram_size: int = 0
    logits_processor: LogitsProcessor | None = None  # per request; applied after the penalties

    def processors(self) -> list[LogitsProcessor]:
        """What edits this request's logits before a token is picked, in order; [] for plain sampling."""
        chain: list[LogitsProcessor] = []
        if self.no_repeat_ngram_size:
            chain.append(NoRepeatNGram(self.no_repeat_ngram_size))
        if self.logits_processor is not None:
            chain.append(self.logits_processor)
        return chain

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise ValueError(f"max_tokens must be >= 1, got {self.max_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not 0 <= self.min_p < 1:
            raise ValueError(f"min_p must be in [0, 1), got {self.min_p}")
        if self.top_k < 0:
            raise ValueError(f"top_k must be >= 0, got {self.top_k}")
        if self.repetition_penalty <= 0:
            raise ValueError(f"repetition_penalty must be > 0, got {self.repetition_penalty}")
        if self.no_repeat_ngram_size < 0:
            raise ValueError(f"no_repeat_ngram_size must be >= 0, got {self.no_repeat_ngram_size}")
        if isinstance(self.stop, str):
            self.stop = [self.stop]


@dataclass(frozen=True)
class NoRepeatNGram:
    """Bans each token that would complete an n-gram already in the generated ids."""

    n: int

    def __call__(self, generated: list[int], logits: torch.Tensor) -> torch.Tensor:
        if len(generated) < self.n:
            return logits
        prefix = generated[len(generated) - self.n + 1 :]
        banned = [
            generated[i + self.n - 1]
            for i in range(len(generated) - self.n + 1)
            if generated[i : i + self.n - 1] == prefix
        ]
        if not banned:
            return logits
        return logits.index_fill(-1, torch.tensor(banned, device=logits.device), float("-inf"))


def apply_repetition_penalty(logits: torch.Tensor, seen: torch.Tensor, penalty: float) -> torch.Tensor:
    """CTRL-style penalty on every token already in the row (``seen`` is a (B, V) bool mask)."""
    penalised = torch.where(logits > 0, logits / penalty, logits * penalty)
    return torch.where(seen, penalised, logits)


def filter_logits(logits: torch.Tensor, params: SamplingParams) -> torch.Tensor:
    """Temperature-scaled logits with the tokens outside top-k / top-p / min-p set to -inf."""
    logits = logits / params.temperature
    if params.top_k and params.top_k < logits.shape[-1]:
        kth = torch.topk(logits, params.top_k, dim=-1).values[..., -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    if params.min_p > 0:
        probs = logits.softmax(-1)
        threshold = params.min_p * probs.amax(-1, keepdim=True)
        logits = logits.masked_fill(probs < threshold, float("-inf"))
    if params.top_p < 1:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cumulative = sorted_logits.softmax(-1).cumsum(-1)
        # Drop a token when the tokens ranked above it already reach top_p.
        drop_sorted = (cumulative - sorted_logits.softmax(-1)) >= params.top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        logits = logits.masked_fill(drop, float("-inf"))
    return logits


def sample(
    logits: torch.Tensor,
    params: SamplingParams,
    seen: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    generated: list[list[int]] | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Next token (B,) and its log-probability under the model's raw distribution (B,).

    ``generated`` (each row's generated ids) is needed when ``params.processors()`` is not empty."""
    logits = logits.float()
    raw_logprobs = logits.log_softmax(-1)
    if seen is not None and params.repetition_penalty != 1.0:
        logits = apply_repetition_penalty(logits, seen, params.repetition_penalty)
    chain = params.processors()
    if chain:
        if generated is None or len(generated) != logits.shape[0]:
            raise ValueError("a logits processor needs every row's generated token ids")
        rows = []
        for ids, row in zip(generated, logits, strict=True):
            for processor in chain:
                row = processor(ids, row)
            rows.append(row)
        logits = torch.stack(rows)
    if params.temperature < GREEDY_BELOW:
        tokens = logits.argmax(-1)
    else:
        probs = filter_logits(logits, params).softmax(-1)
        tokens = torch.multinomial(probs, 1, generator=generator).squeeze(-1)
    return tokens, raw_logprobs.gather(-1, tokens.unsqueeze(-1)).squeeze(-1)
