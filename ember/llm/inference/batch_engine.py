"""Continuous batching: sequences join and leave the running batch at every step.

Each ``step`` feeds every running sequence: one token for those decoding, a chunk of the prompt for
those prefilling (decodes first, then prefill chunks, within ``token_budget`` tokens), then admits
waiting sequences while sequences, budget and KV blocks allow. When a decode needs a block and none is
left, the most recently admitted sequence is preempted: its blocks are freed and it goes back to the
head of the queue, to be recomputed (its prefix blocks usually still cached) when blocks free up.

    engine = BatchEngine(Engine(model, tokenizer), max_running=16, num_blocks=1024)
    sequence = engine.add(prompt_ids, SamplingParams(max_tokens=64))
    while engine.has_work():
        for sequence, chunk in engine.step(): ...   # StreamChunks, as Engine.stream yields them
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import dataclass, field

import torch

from ember.llm.inference.batch_step import Work, forward_step
from ember.llm.inference.engine import Engine, StreamChunk
from ember.llm.inference.paged_kv import BlockTable, PagedKVCache
from ember.llm.inference.sampling import GREEDY_BELOW, SamplingParams, sample
from ember.llm.inference.stopping import SequenceText

_ids = itertools.count()


@dataclass(eq=False)
class Sequence:
    """One request's tokens (prompt, then generated), its blocks and its decoding state."""

    token_ids: list[int]
    params: SamplingParams
    text: SequenceText
    max_len: int  # prompt + max_tokens, capped by the context window
    prompt_len: int
    generator: torch.Generator | None
    seen: torch.Tensor | None  # (1, V) tokens so far, for the repetition penalty
    cancelled: threading.Event = field(default_factory=threading.Event)
    table: BlockTable = field(default_factory=BlockTable)
    computed: int = 0  # leading tokens whose keys and values are in the cache
    id: int = field(default_factory=lambda: next(_ids))

    @property
    def finished(self) -> bool:
        return self.text.finish_reason is not None


class BatchEngine:
    """Steps many sequences at once over a paged KV cache with prefix caching."""

    def __init__(
        self,
        engine: Engine,
        max_running: int = 16,
        num_blocks: int = 1024,
        block_size: int = 16,
        token_budget: int = 512,
    ) -> None:
        if max_running < 1 or token_budget < 1:
            raise ValueError(f"max_running ({max_running}) and token_budget ({token_budget}) must be >= 1")
        self.engine, self.model = engine, engine.model
        self.max_running, self.token_budget = max_running, token_budget
        self.cache = PagedKVCache(self.model.config, num_blocks, block_size, engine.kv_dtype, engine.device)
        self.pool = self.cache.pool
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.preemptions = 0

    def add(
        self, prompt: list[int], params: SamplingParams, cancelled: threading.Event | None = None
    ) -> Sequence:
        """Queue a prompt (token ids); raises ValueError when it leaves no room in the context."""
        ids = self.engine._encode(prompt)
        context = self.model.config.max_seq_len
        max_len = min(len(ids) + params.max_tokens, context)
        if len(ids) >= max_len:
            raise ValueError(f"prompt of {len(ids)} tokens leaves no room in the context of {context}")
        if self.pool.blocks_for(max_len) > self.pool.num_blocks:
            raise ValueError(
                f"prompt of {len(ids)} tokens plus max_tokens {params.max_tokens} needs "
                f"{self.pool.blocks_for(max_len)} KV blocks; the pool has {self.pool.num_blocks}"
            )
        seen = None
        if params.repetition_penalty != 1.0:
            seen = torch.zeros(1, self.model.config.vocab_size, dtype=torch.bool, device=self.engine.device)
            seen[0, ids] = True
        generator = None
        if params.seed is not None:
            generator = torch.Generator(device=self.engine.device).manual_seed(params.seed)
        sequence = Sequence(
            ids, params, self.engine._sequence_text(params), max_len, len(ids), generator, seen,
            cancelled or threading.Event(),
        )  # fmt: skip
        self.waiting.append(sequence)
        return sequence

    def has_work(self) -> bool:
        return bool(self.waiting or self.running)

    def drop(self, sequence: Sequence) -> None:
        """Remove a sequence wherever it is and free its blocks (cancellation, failure, shutdown)."""
        if sequence in self.running:
            self.running.remove(sequence)
        elif sequence in self.waiting:
            self.waiting.remove(sequence)
        self.pool.free(sequence.table)

    @torch.inference_mode()
    def step(self) -> list[tuple[Sequence, StreamChunk]]:
        """One forward pass over the scheduled work; returns each fed sequence's new chunks (the last
        chunk of a finished sequence carries its finish reason). Cancelled sequences are dropped."""
        for sequence in [s for s in itertools.chain(self.running, self.waiting) if s.cancelled.is_set()]:
            self.drop(sequence)
        works = self._schedule()
        if not works:
            return []
        logits = forward_step(self.model, self.cache, [work for _, work in works])
        ready = []  # (row, sequence): those whose prompt (or last token) is now in, to sample for
        for row, (sequence, work) in enumerate(works):
            sequence.computed = work.end
            self.pool.register_full_blocks(sequence.table, sequence.token_ids, sequence.computed)
            if sequence.computed == len(sequence.token_ids):
                ready.append((row, sequence))
        picked = self._pick_greedy(logits, ready)
        out: list[tuple[Sequence, StreamChunk]] = []
        for row, sequence in ready:
            token, logprob = picked.get(row) or self._sample(sequence, logits[row : row + 1])
            out += self._emit(sequence, token, logprob)
        return out

    # -- internals ----------------------------------------------------------------------------

    def _schedule(self) -> list[tuple[Sequence, Work]]:
        budget = self.token_budget
        works: list[tuple[Sequence, Work]] = []
        for sequence in [s for s in self.running if len(s.token_ids) - s.computed == 1]:
            if sequence not in self.running:
                continue  # preempted below for an earlier sequence's block
            while not self.pool.append_slot(sequence.table, len(sequence.token_ids)):
                victim = self.running[-1]
                self._preempt(victim)
                works = [(s, w) for s, w in works if s is not victim]
                if victim is sequence:
                    break
            else:
                works.append((sequence, self._work(sequence, 1)))
        budget -= len(works)
        for sequence in self.running:
            remaining = len(sequence.token_ids) - sequence.computed
            if remaining > 1 and budget > 0:
                works.append((sequence, self._work(sequence, min(remaining, budget))))
                budget -= works[-1][1].end - works[-1][1].start
        while self.waiting and budget > 0 and len(self.running) < self.max_running:
            sequence = self.waiting[0]
            if self.pool.blocks_for(len(sequence.token_ids)) > self.pool.available:
                break  # wait for blocks to free up (add() refused sequences that can never fit)
            self.waiting.popleft()
            sequence.computed = self.pool.allocate_prompt(sequence.table, sequence.token_ids)
            self.running.append(sequence)
            remaining = len(sequence.token_ids) - sequence.computed
            works.append((sequence, self._work(sequence, min(remaining, budget))))
            budget -= works[-1][1].end - works[-1][1].start
        return works

    @staticmethod
    def _work(sequence: Sequence, count: int) -> Work:
        return Work(sequence.token_ids, sequence.table, sequence.computed, sequence.computed + count)

    def _preempt(self, sequence: Sequence) -> None:
        """Free the sequence's blocks; it recomputes its tokens (prompt and generated) when readmitted."""
        self.running.remove(sequence)
        self.pool.free(sequence.table)
        sequence.computed = 0
        self.waiting.appendleft(sequence)
        self.preemptions += 1

    @staticmethod
    def _pick_greedy(logits: torch.Tensor, ready: list[tuple[int, Sequence]]) -> dict[int, tuple[int, float]]:
        """(token, log-prob) of every plain greedy row (no penalty, no processor), in one pass over their
        logits rather than one per row: row -> pick."""
        rows = [row for row, s in ready if _plain_greedy(s.params)]
        if not rows:
            return {}
        chosen = logits[rows].float()
        tokens = chosen.argmax(-1)
        logprobs = chosen.gather(-1, tokens[:, None]).squeeze(-1) - chosen.logsumexp(-1)
        return dict(zip(rows, zip(tokens.tolist(), logprobs.tolist(), strict=True), strict=True))

    @staticmethod
    def _sample(sequence: Sequence, logits: torch.Tensor) -> tuple[int, float]:
        params = sequence.params
        generated = [sequence.token_ids[sequence.prompt_len :]] if params.processors() else None
        token, logprob = sample(logits, params, sequence.seen, sequence.generator, generated)
        return token.item(), logprob.item()

    def _emit(self, sequence: Sequence, token_id: int, logprob: float) -> list[tuple[Sequence, StreamChunk]]:
        """Append the sampled token, release its text, and finish the sequence at a stop or its length."""
        params = sequence.params
        if sequence.seen is not None:
            sequence.seen[0, token_id] = True
        sequence.token_ids.append(token_id)
        text = sequence.text
        chunks = [StreamChunk(text.push(token_id), [token_id], [logprob] if params.logprobs else None)]
        chunks[0].finish_reason = text.finish_reason
        if not text.finish_reason and len(sequence.token_ids) == sequence.max_len:
            chunks.append(StreamChunk(text.finish("length"), [], [] if params.logprobs else None, "length"))
        if sequence.finished:
            self.running.remove(sequence)
            self.pool.free(sequence.table)
        return [(sequence, chunk) for chunk in chunks]


def _plain_greedy(params: SamplingParams) -> bool:
    """Whether the next token is simply the argmax of the logits."""
    return params.temperature < GREEDY_BELOW and params.repetition_penalty == 1.0 and not params.processors()
