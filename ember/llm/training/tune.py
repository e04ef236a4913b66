"""Fine-tuning runs (SFT, DPO) on the training loop: the model they start from (an installed checkpoint,
with fresh LoRA adapters or all weights trainable, or an installed adapter model whose adapter trains on),
their settings, and how they drive the loop."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch

from ember.llm.inference.checkpoint import load_model, load_tokenizer, quantization_of
from ember.llm.inference.model import Transformer
from ember.llm.training.distributed import Distributed
from ember.llm.training.lora import LoraSpec, attach_lora, load_adapter, read_adapter_spec
from ember.llm.training.trainer import BatchSource, TrainConfig, Trainer
from ember.llm.training.tuned_models import base_of, is_adapter_model


def finetune_config(
    steps: int,
    batch_size: int,
    lr: float,
    seq_len: int,
    seed: int = 0,
    checkpoint_every: int = 50,
    dtype: str = "fp32",
) -> TrainConfig:
    """AdamW over the trainable parameters, ``batch_size`` rows (or pairs) per step in one pass; a short
    warmup, constant, then a linear warmdown over the last 20% of the steps. Fp32 by default; "auto" runs
    in bf16 autocast where the hardware has it (a DPO run's reference log-probs too)."""
    return TrainConfig(
        steps=steps,
        seq_len=seq_len,
        micro_batch=batch_size,
        batch_tokens=batch_size * seq_len,
        optimizer="adamw",
        lr=lr,
        warmup_steps=min(10, steps // 10 + 1),
        seed=seed,
        checkpoint_every=checkpoint_every,
        dtype=dtype,
    )


def run_finetune(
    model: Transformer,
    tokenizer,
    config: TrainConfig,
    batches: BatchSource,
    loss_fn: Callable,
    run_dir: Path,
    on_step: Callable[[dict], None] | None = None,
) -> list[dict]:
    """Train on the loop, one process on the model's device, no live display (callers show progress via
    ``on_step``); resumes from ``run_dir``'s latest checkpoint when there is one. Returns the records."""
    dist = Distributed.single(str(next(model.parameters()).device))
    torch.manual_seed(config.seed)  # LoRA dropout; a resumed run restores the checkpoint's RNG instead
    trainer = Trainer(
        model, tokenizer, config, batches, run_dir, loss_fn=loss_fn, dist=dist, show=False, on_step=on_step
    )
    records = trainer.run(resume=True)
    model.eval()
    return records


def starting_model(
    directory: Path, spec: LoraSpec | None
) -> tuple[Transformer, object, LoraSpec | None, Path]:
    """(model, tokenizer, LoRA spec or None, the full checkpoint it builds on) for a run from ``directory``.

    An adapter model keeps training its own adapter (``spec`` is then the adapter's). Fp32, on the GPU when
    there is one."""
    directory = Path(directory)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if is_adapter_model(directory):
        root = base_of(directory)
        model = load_adapter(load_model(root, device=device), directory, root.name)
        return model, load_tokenizer(directory), read_adapter_spec(directory), root
    model = load_model(directory, device=device)
    if quantization_of(model)[0]:
        raise ValueError(
            f"{directory.name!r} is quantized: fine-tune its full-precision model, then quantize"
        )
    if spec is not None:
        attach_lora(model, spec)
    else:
        model.requires_grad_(True)
    return model, load_tokenizer(directory), spec, directory
