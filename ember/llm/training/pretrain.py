"""Pretraining, from scratch or continued: token shards -> packed batches -> the loop -> a model.

``ember train pretrain`` calls ``pretrain``; under ``torchrun`` every process runs it and joins the
process group from the environment (see distributed.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from ember.llm.inference.checkpoint import save_model
from ember.llm.inference.evaluate import batch_nats_and_bytes, token_byte_lengths
from ember.llm.tokenizer import Tokenizer
from ember.llm.training.distributed import Distributed
from ember.llm.training.loader import PackedBatches, validation_batches
from ember.llm.training.models import config_for_depth, fresh_model, installed_model, parameter_count
from ember.llm.training.sharding import is_sharded
from ember.llm.training.shards import ShardError, open_split, read_index
from ember.llm.training.trainer import TrainConfig, Trainer


def validation_bpb(
    model, shards, byte_lengths, config: TrainConfig, dist: Distributed, max_tokens: int | None
):
    """Val bits per byte over the val split (or its first ``max_tokens``), all processes together."""
    nats = torch.zeros((), dtype=torch.float64, device=dist.device)
    bytes_ = torch.zeros((), dtype=torch.float64, device=dist.device)
    count = 0
    for inputs, targets in validation_batches(
        shards, config.micro_batch, config.seq_len, max_tokens, dist.rank, dist.world
    ):
        n, b = batch_nats_and_bytes(model, inputs.to(dist.device), targets.to(dist.device), byte_lengths)
        nats, bytes_, count = nats + n, bytes_ + b, count + 1
    if is_sharded(model):
        # Every process must join each forward pass: the shorter shares run empty ones. The longest
        # share is counted here, not with a collective, which would interleave with the forward passes.
        most = max(
            sum(
                1
                for _ in validation_batches(
                    shards, config.micro_batch, config.seq_len, max_tokens, r, dist.world
                )
            )
            for r in range(dist.world)
        )
        with torch.no_grad():
            for _ in range(most - count):
                model(torch.zeros(1, 1, dtype=torch.long, device=dist.device))
    nats, bytes_ = dist.sum(nats), dist.sum(bytes_)
    return (nats / math.log(2) / bytes_).item()


def pretrain(
    data: Path,
    run_dir: Path,
    config: TrainConfig,
    depth: int | None = None,
    width: int | None = None,
    init_from: Path | None = None,
    resume: bool = False,
    val_tokens: int | None = None,
    device: str | None = None,
    show: bool = True,
    save_hook=None,
) -> dict:
    """Train on the shards in ``data``; the final model lands in ``run_dir/model``. Returns a summary."""
    dist = Distributed.from_environment(device)
    try:
        index = read_index(data)
        train_shards, val_shards = open_split(data, "train"), open_split(data, "val")
        if init_from is not None:
            model, tokenizer = installed_model(init_from, config.seq_len)
            model.config.max_seq_len = max(model.config.max_seq_len, config.seq_len)
        else:
            tokenizer = Tokenizer.load(Path(data) / "tokenizer.json")
            model = fresh_model(
                config_for_depth(depth or 4, tokenizer.vocab_size, config.seq_len, width), config.seed
            )
        if index["vocab_size"] > model.config.vocab_size:
            raise ShardError(
                f"{data}: tokens go up to vocabulary size {index['vocab_size']}, "
                f"the model has {model.config.vocab_size}"
            )
        batches = PackedBatches(
            train_shards, config.micro_batch, config.seq_len, config.seed, rank=dist.rank, world=dist.world
        )
        lengths = token_byte_lengths(tokenizer).to(dist.device)

        def evaluate(module) -> dict:
            return {"val_bpb": validation_bpb(module, val_shards, lengths, config, dist, val_tokens)}

        trainer = Trainer(
            model,
            tokenizer,
            config,
            batches,
            run_dir,
            evaluate=evaluate,
            dist=dist,
            show=show,
            save_hook=save_hook,
        )
        before = None
        if not resume or not (Path(run_dir) / "checkpoints" / "latest").is_file():
            model.eval()
            before = evaluate(trainer.model)["val_bpb"]
            model.train()
        records = trainer.run(resume=resume)
        trainer.save()
        whole = trainer.whole_model()
        if dist.is_main:
            save_model(whole.float(), Path(run_dir) / "model", tokenizer)
        return {
            "parameters": parameter_count(trainer.model),
            "steps": trainer.step,
            "val_bpb_before": before,
            "val_bpb": next((r["val_bpb"] for r in reversed(records) if "val_bpb" in r), None),
            "records": records,
            "model_dir": str(Path(run_dir) / "model"),
        }
    finally:
        dist.close()
