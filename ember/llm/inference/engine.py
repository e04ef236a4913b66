"""The inference engine: batched prefill, then decode with a preallocated KV cache.

Rows of a batch keep their own lengths (no left padding): prompts are right-padded for prefill,
and each row then decodes at its own position. On CUDA the decode step has a static shape
(whole cache read, masked) so ``torch.compile(mode="reduce-overhead")`` can capture it as a
CUDA graph, and tokens are copied to the host once per ``sync_every`` steps, not per token.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from ember.llm.inference.fused_decode import kv_cache_dtype, use_fused_decode
from ember.llm.inference.kv_cache import KVCache
from ember.llm.inference.model import Transformer
from ember.llm.inference.sampling import SamplingParams, sample
from ember.llm.inference.stopping import SequenceText
from ember.llm.kernels import cpu_kernels_available


@dataclass
class Generation:
    """One finished sequence."""

    text: str
    token_ids: list[int]
    prompt_tokens: int
    finish_reason: str  # "stop" (stop token or string) or "length"
    logprobs: list[float] | None = None


@dataclass
class StreamChunk:
    """Text released since the previous chunk of a streamed sequence."""

    text: str
    token_ids: list[int]
    logprobs: list[float] | None = None
    finish_reason: str | None = None


def configure_cpu_threads() -> int:
    """Use every core this process may run on (EMBER_NUM_THREADS overrides)."""
    wanted = os.environ.get("EMBER_NUM_THREADS")
    count = int(wanted) if wanted else len(os.sched_getaffinity(0))
    torch.set_num_threads(max(1, count))
    return torch.get_num_threads()


def use_one_cpu_thread() -> None:
    """Run this thread's torch work on one core, with no OpenMP team of its own: for threads beside
    the LLM scheduler's worker, whose decode slows twofold while another thread holds a team
    (ember.llm.inference.scheduler). The setting is per thread."""
    torch.set_num_threads(1)


class Engine:
    """Generates text from a loaded model and its tokenizer (ember.llm.tokenizer contract)."""

    def __init__(
        self, model: Transformer, tokenizer, compile_decode: bool = False, static_decode: bool | None = None
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.device = next(model.parameters()).device
        self.dtype = next(p for p in model.parameters() if p.is_floating_point()).dtype
        # Static decode (whole cache read every step) is what CUDA graphs need; on CPU reading only
        # the filled prefix is faster. Either works on either device.
        self.static_decode = self.device.type == "cuda" if static_decode is None else static_decode
        self.sync_every = 16 if self.device.type == "cuda" else 1
        if self.device.type == "cpu":
            configure_cpu_threads()
            model.use_native_decode_attention(cpu_kernels_available())
            use_fused_decode(model, cpu_kernels_available())
        self.kv_dtype = kv_cache_dtype(model, self.dtype)
        self._decode = self._decode_step
        self._static_cache: KVCache | None = None
        if compile_decode:
            mode = "reduce-overhead" if self.device.type == "cuda" else None
            # On CPU the decode step reads a growing cache prefix: compile for dynamic length once.
            dynamic = None if self.device.type == "cuda" else True
            self._decode = torch.compile(self._decode_step, mode=mode, fullgraph=True, dynamic=dynamic)

    @classmethod
    def load(
        cls,
        directory: Path,
        device: str | None = None,
        dtype: torch.dtype | None = None,
        compile_decode: bool | None = None,
    ) -> Engine:
        """Engine for the checkpoint in ``directory`` (resolve a model name with registry.resolve_model).

        Defaults: CUDA with bf16 and a compiled decode step when a GPU is present, else CPU fp32.
        On CPU ``compile_decode=True`` trades a warm-up of about a minute (under half with a warm
        inductor cache) for ~1.3x faster decode of quantized models where their blocks are not fused
        (fused_decode: int8/int4 on AVX512-VNNI CPUs, where compiling adds nothing).
        """
        from ember.llm.inference.checkpoint import load_tokenizer
        from ember.llm.training.tuned_models import load_installed

        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        dtype = dtype or (torch.bfloat16 if device.startswith("cuda") else torch.float32)
        model = load_installed(directory, device=device, dtype=dtype)  # an adapter: base + LoRA
        if compile_decode is None:
            compile_decode = device.startswith("cuda")
        return cls(model, load_tokenizer(directory), compile_decode=compile_decode)

    # -- public API ---------------------------------------------------------------------------

    def generate(
        self, prompts: list[str] | list[list[int]], params: SamplingParams | None = None
    ) -> list[Generation]:
        """Complete every prompt (text, or token ids) as one batch."""
        params = params or SamplingParams()
        ids = [self._encode(p) for p in prompts]
        texts = [self._sequence_text(params) for _ in ids]
        tokens: list[list[int]] = [[] for _ in ids]
        logprobs: list[list[float]] = [[] for _ in ids]
        for row, token, logprob in self._tokens(ids, params, texts):
            tokens[row].append(token)
            logprobs[row].append(logprob)
            texts[row].push(token)
        for text in texts:
            text.finish("length")
        return [
            Generation(t.text, tok, len(p), t.finish_reason, lp if params.logprobs else None)
            for t, tok, p, lp in zip(texts, tokens, ids, logprobs, strict=True)
        ]

    def stream(self, prompt: str | list[int], params: SamplingParams | None = None) -> Iterator[StreamChunk]:
        """Yield text as it is generated; the last chunk carries the finish reason."""
        params = params or SamplingParams()
        text = self._sequence_text(params)
        for _, token, logprob in self._tokens([self._encode(prompt)], params, [text]):
            delta = text.push(token)
            lp = [logprob] if params.logprobs else None
            yield StreamChunk(delta, [token], lp, text.finish_reason)
            if text.finish_reason:
                return
        yield StreamChunk(text.finish("length"), [], [] if params.logprobs else None, "length")

    # -- internals ----------------------------------------------------------------------------

    def _encode(self, prompt: str | list[int]) -> list[int]:
        ids = self.tokenizer.encode(prompt) if isinstance(prompt, str) else list(prompt)
        if not ids:
            raise ValueError("prompt is empty: at least one token is needed to start generation")
        return ids

    def _sequence_text(self, params: SamplingParams) -> SequenceText:
        stop_ids = self.tokenizer.eos_ids if params.stop_token_ids is None else params.stop_token_ids
        return SequenceText(self.tokenizer.stream_decoder(), params.stop, set(stop_ids))

    def _cache(self, batch: int, max_len: int) -> KVCache:
        """A fresh cache, or on CUDA one full-context cache per batch size, reused across calls so a
        captured CUDA graph keeps its addresses. Reuse is safe: slots past a row's position are
        masked, and every slot at or before it is rewritten before it is read."""
        if not self.static_decode:
            cache = KVCache(self.model.config, batch, max_len, self.kv_dtype, self.device)
            for tensor in cache.k + cache.v:
                # Each call sizes its cache to its prompt: compile once for any length, not per length.
                torch._dynamo.maybe_mark_dynamic(tensor, 2)
            return cache
        if self._static_cache is None or self._static_cache.batch_size != batch:
            config = self.model.config
            self._static_cache = KVCache(config, batch, config.max_seq_len, self.kv_dtype, self.device)
            for tensor in self._static_cache.k + self._static_cache.v:
                torch._dynamo.mark_static_address(tensor)
        return self._static_cache

    def _decode_step(
        self, tokens: torch.Tensor, positions: torch.Tensor, cache: KVCache, kv_len: int | None
    ) -> torch.Tensor:
        # One row reading exactly its filled prefix needs no mask (not so for batches or static shapes).
        whole = tokens.shape[0] == 1 and kv_len is not None
        return self.model(tokens, positions, cache, kv_len=kv_len, sees_whole_cache=whole)[:, -1]

    @torch.inference_mode()
    def _tokens(
        self, prompts: list[list[int]], params: SamplingParams, texts: list[SequenceText]
    ) -> Iterator[tuple[int, int, float]]:
        """Yield (row, token, logprob) in order until every row has finished or hit max_tokens."""
        lengths = [len(p) for p in prompts]
        batch, longest = len(prompts), max(lengths)
        max_len = min(longest + params.max_tokens, self.model.config.max_seq_len)
        if longest >= max_len:
            raise ValueError(
                f"prompt of {longest} tokens leaves no room in the context of {self.model.config.max_seq_len}"
            )
        steps = max_len - longest
        cache = self._cache(batch, max_len)
        padded = torch.zeros(batch, longest, dtype=torch.long)
        for row, ids in enumerate(prompts):
            padded[row, : len(ids)] = torch.tensor(ids)
        padded = padded.to(self.device)
        lengths_t = torch.tensor(lengths, device=self.device)
        seen = None
        if params.repetition_penalty != 1.0:
            seen = torch.zeros(batch, self.model.config.vocab_size, dtype=torch.bool, device=self.device)
            for row, ids in enumerate(prompts):
                seen[row, ids] = True
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.device).manual_seed(params.seed)
        generated: list[list[int]] | None = [[] for _ in prompts] if params.processors() else None

        # Prefill: right padding is harmless because masking is causal by absolute position.
        logits = self.model(padded, cache=cache, kv_len=longest, logits_index=lengths_t - 1)[:, -1]
        positions = lengths_t.unsqueeze(1)
        pending_tokens, pending_logprobs = [], []
        for step in range(steps):
            token, logprob = sample(logits, params, seen, generator, generated)
            if generated is not None:  # processors read the ids each step: one host copy per token
                for row, token_id in enumerate(token.tolist()):
                    generated[row].append(token_id)
            pending_tokens.append(token)
            pending_logprobs.append(logprob)
            if seen is not None:
                seen[torch.arange(batch, device=self.device), token] = True
            last = step == steps - 1
            if len(pending_tokens) == self.sync_every or last:
                # One host copy per chunk; tokens after a row's stop are dropped here.
                chunk = torch.stack(pending_tokens, 1).tolist()
                chunk_lp = torch.stack(pending_logprobs, 1).tolist()
                pending_tokens, pending_logprobs = [], []
                for i in range(len(chunk[0])):
                    for row in range(batch):
                        if texts[row].finish_reason is None:
                            yield row, chunk[row][i], chunk_lp[row][i]
                if all(t.finish_reason for t in texts) or last:
                    return
            kv_len = None if self.static_decode else longest + step + 1
            logits = self._decode(token.unsqueeze(1), positions, cache, kv_len)
            positions = positions + 1
