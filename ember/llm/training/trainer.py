"""The one training loop, shared by pretraining, SFT and DPO.

What changes between them plugs in: a ``BatchSource`` (next_batch, state_dict, load_state_dict) that
yields whatever the ``loss_fn(model, batch)`` understands (it returns the loss, or (loss, metrics) whose
metrics join the step's record), an ``evaluate(model) -> dict`` hook and an ``on_step(record)`` callback.
The loop owns the rest: schedule, gradient accumulation, DDP or FSDP, clipping, autocast, compile, checkpoints
(of the trainable parameters only, when part of the model is frozen) and resume, metrics, samples and
the live display. Only the trainable (requires_grad) parameters are optimized.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

import torch
import torch.nn.functional as F

from ember.llm.inference.model import Transformer
from ember.llm.kernels import cpu_has_native_bf16
from ember.llm.training.checkpoints import BY_NAME, latest_checkpoint, load_checkpoint, save_checkpoint
from ember.llm.training.distributed import Distributed
from ember.llm.training.metrics import LiveDisplay, MetricsLog, plot_metrics
from ember.llm.training.models import flops_per_token
from ember.llm.training.optimizers import build_optimizers, set_lr
from ember.llm.training.schedule import lr_multiplier
from ember.llm.training.sharding import full_model, full_optimizer_states, shard_model, whole


class BatchSource(Protocol):
    def next_batch(self): ...
    def state_dict(self) -> dict: ...
    def load_state_dict(self, state: dict) -> None: ...


def next_token_loss(model, batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
    """Mean cross-entropy of (inputs, targets); targets < 0 are ignored (SFT masks prompts so)."""
    inputs, targets = batch
    logits = model(inputs)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=-1)


@dataclass
class TrainConfig:
    steps: int
    seq_len: int = 256
    micro_batch: int = 8  # rows per forward pass, per process
    batch_tokens: int = 2048  # tokens per optimizer step, all processes together
    optimizer: str = "muon"
    lr: float = 3e-3  # AdamW: embeddings, head, gains (everything with --optimizer adamw)
    matrix_lr: float = 0.02  # Muon: the blocks' matrices
    weight_decay: float = 0.0
    warmup_steps: int = 0
    warmdown_frac: float = 0.2
    final_lr_frac: float = 0.0
    grad_clip: float = 1.0
    dtype: str = "auto"  # "bf16" autocast, "fp32", or auto: bf16 on CUDA and on CPUs with bf16 hardware
    compile: bool = False
    fsdp: bool = False  # shard weights, gradients and optimizer state over the processes (FSDP2)
    seed: int = 0
    eval_every: int = 0
    sample_every: int = 0
    sample_tokens: int = 32
    prompts: list[str] = field(default_factory=list)
    checkpoint_every: int = 0
    peak_tflops: float | None = None  # for MFU; default 989 (H100/H200 dense bf16) on CUDA

    def accumulation(self, world: int) -> int:
        """Micro-batches per process per step; the sizes must divide exactly."""
        per_pass = self.micro_batch * self.seq_len * world
        if self.batch_tokens % per_pass:
            raise ValueError(
                f"batch_tokens {self.batch_tokens} is not a multiple of micro_batch {self.micro_batch} x "
                f"seq_len {self.seq_len} x {world} process(es) = {per_pass}"
            )
        return self.batch_tokens // per_pass


class Trainer:
    def __init__(
        self,
        model: Transformer,
        tokenizer,
        config: TrainConfig,
        batches: BatchSource,
        run_dir: Path,
        loss_fn: Callable = next_token_loss,
        evaluate: Callable[[torch.nn.Module], dict] | None = None,
        dist: Distributed | None = None,
        show: bool = True,
        save_hook: Callable | None = None,
        on_step: Callable[[dict], None] | None = None,
    ) -> None:
        self.dist = dist or Distributed.single()
        self.config, self.batches, self.loss_fn, self.evaluate = config, batches, loss_fn, evaluate
        self.tokenizer, self.run_dir, self.save_hook = tokenizer, Path(run_dir), save_hook
        self.on_step = on_step
        self.accumulation = config.accumulation(self.dist.world)
        self.device = self.dist.device
        self.model = model.to(self.device).train()
        self.sharded = config.fsdp and self.dist.world > 1
        if self.sharded:
            shard_model(self.model)
        self.optimizers = build_optimizers(
            self.model, config.optimizer, config.lr, config.matrix_lr, config.weight_decay
        )
        self.forward = self.model if self.sharded else self.dist.wrap(self.model)
        if config.compile:
            self.forward = torch.compile(self.forward)
        self.bf16 = uses_bf16(config.dtype, self.device)
        self.autocast = lambda: autocast(config.dtype, self.device)
        self.peak = config.peak_tflops or (989.0 if self.device.type == "cuda" else None)
        self.show = show and self.dist.is_main
        self.step = 0
        self.step_metrics: dict[str, float] = {}

    def resume(self) -> bool:
        """Load the run's latest checkpoint, if any; True when one was loaded."""
        directory = latest_checkpoint(self.run_dir)
        if directory is None:
            return False
        state = load_checkpoint(directory, self.model, self.optimizers)
        self.batches.load_state_dict(state["cursor"])
        self.step = state["step"]
        return True

    def save(self) -> Path | None:
        """Checkpoint the run (main process writes; under FSDP every process helps gather first)."""
        path = None
        state = {"cursor": self.batches.state_dict(), "config": asdict(self.config)}
        if self.sharded:
            model, optimizer_states = self.whole_model(), full_optimizer_states(self.model, self.optimizers)
            state["optimizer_layout"] = BY_NAME
        else:
            model, optimizer_states = self.model, [o.state_dict() for o in self.optimizers]
        if self.dist.is_main:
            path = save_checkpoint(
                self.run_dir, self.step, model, self.tokenizer, optimizer_states, state, self.save_hook
            )
        self.dist.barrier()
        return path

    def whole_model(self) -> Transformer | None:
        """The model with all its weights: itself, or under FSDP a gathered CPU copy (main process only;
        every process must call it)."""
        return full_model(self.model) if self.sharded else self.model

    def train_step(self) -> float:
        """One optimizer step over ``accumulation`` micro-batches; the mean loss over all processes.

        The loss_fn's metrics, averaged the same way, are left in ``step_metrics`` with the gradient norm."""
        cfg = self.config
        multiplier = lr_multiplier(
            self.step, cfg.steps, cfg.warmup_steps, int(cfg.warmdown_frac * cfg.steps), cfg.final_lr_frac
        )
        set_lr(self.optimizers, multiplier)
        total = torch.zeros((), device=self.device)
        sums: dict[str, float] = {}
        for micro in range(self.accumulation):
            batch = _to(self.batches.next_batch(), self.device)
            last = micro == self.accumulation - 1
            with self.dist.no_sync(self.forward, not last), self.autocast():
                loss = self.loss_fn(self.forward, batch)
                loss, metrics = loss if isinstance(loss, tuple) else (loss, {})
            with self.dist.no_sync(self.forward, not last):
                (loss / self.accumulation).backward()
            total += loss.detach().float()
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + value
        total = self.dist.mean(total / self.accumulation)
        self.step_metrics = self._mean_metrics(sums)
        if cfg.grad_clip:
            norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
            self.step_metrics["grad_norm"] = whole(norm).item()
        for optimizer in self.optimizers:
            optimizer.step()
        self.model.zero_grad(set_to_none=True)
        self.step += 1
        self._multiplier = multiplier
        return total.item()

    def run(self, resume: bool = False) -> list[dict]:
        """Train to ``config.steps``; returns the metrics records (main process)."""
        if resume and self.resume() and self.show:
            print(f"resumed {self.run_dir} at step {self.step}")
        cfg = self.config
        log = (
            MetricsLog(self.run_dir / "metrics.jsonl", resume_from_step=self.step)
            if self.dist.is_main
            else None
        )
        flops = flops_per_token(self.model.config, cfg.seq_len)
        val_bpb, started = None, time.perf_counter()
        with LiveDisplay(cfg.steps, enabled=self.show) as display:
            while self.step < cfg.steps:
                tick = time.perf_counter()
                loss = self.train_step()
                seconds = time.perf_counter() - tick
                rate = cfg.batch_tokens / seconds
                record = {
                    **self.step_metrics,
                    "step": self.step,
                    "loss": loss,
                    "lr_multiplier": self._multiplier,
                    "tokens": self.step * cfg.batch_tokens,
                    "tokens_per_s": rate,
                    "mfu": flops * rate / (self.peak * 1e12) if self.peak else None,
                    "elapsed_s": time.perf_counter() - started,
                }
                if self._due(cfg.eval_every) and self.evaluate is not None:
                    record.update(self._evaluate())
                    val_bpb = record.get("val_bpb", val_bpb)
                if log:
                    log.write(record)
                    display.update(record, val_bpb)
                if self.on_step is not None and self.dist.is_main:
                    self.on_step(record)
                # under FSDP every process runs the forward passes; only the main one shows them
                if self._due(cfg.sample_every) and cfg.prompts and (self.dist.is_main or self.sharded):
                    self._samples(display)
                if self._due(cfg.checkpoint_every):
                    self.save()
        if log:
            plot_metrics(log.records, self.run_dir / "curves.png", title=self.run_dir.name)
        return log.records if log else []

    def _mean_metrics(self, sums: dict[str, float]) -> dict[str, float]:
        """Per-micro-batch metrics averaged over the step's micro-batches and all processes."""
        if not sums:
            return {}
        values = torch.tensor(list(sums.values()), dtype=torch.float64, device=self.device)
        values = self.dist.mean(values / self.accumulation)
        return dict(zip(sums, values.tolist(), strict=True))

    def _due(self, every: int) -> bool:
        return bool(every) and (self.step % every == 0 or self.step == self.config.steps)

    def _evaluate(self) -> dict:
        self.model.eval()
        with self.autocast():
            result = self.evaluate(self.model)
        self.model.train()
        return result

    @torch.no_grad()
    def _samples(self, display: LiveDisplay) -> None:
        self.model.eval()
        lines = []
        for prompt in self.config.prompts:
            ids = self.tokenizer.encode(prompt)
            for _ in range(self.config.sample_tokens):
                logits = self.model(torch.tensor([ids[-self.config.seq_len :]], device=self.device))
                ids.append(int(logits[0, -1].argmax()))
            text = self.tokenizer.decode(ids)
            lines.append({"step": self.step, "prompt": prompt, "text": text})
            display.print(f"[step {self.step}] {text!r}")
        self.model.train()
        if not self.dist.is_main:
            return
        with (self.run_dir / "samples.jsonl").open("a") as handle:
            import json

            handle.writelines(json.dumps(line) + "\n" for line in lines)


def uses_bf16(dtype: str, device: torch.device) -> bool:
    """Whether a run of ``dtype`` ("bf16", "fp32" or "auto") computes in bf16 autocast on ``device``:
    auto does on CUDA and on CPUs with bf16 hardware."""
    fast = device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
    return dtype == "bf16" or (dtype == "auto" and fast)


def autocast(dtype: str, device: torch.device) -> contextlib.AbstractContextManager:
    """The context a forward pass of such a run runs in."""
    if uses_bf16(dtype, device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _to(batch, device: torch.device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, tuple | list):
        return type(batch)(_to(item, device) for item in batch)
    if isinstance(batch, dict):
        return {key: _to(value, device) for key, value in batch.items()}
    return batch
