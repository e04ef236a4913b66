"""Building blocks of the loop tests: tiny shards and a tiny trainer."""

from pathlib import Path

from ember.llm.training.loader import PackedBatches
from ember.llm.training.models import fresh_model
from ember.llm.training.prepare import prepare
from ember.llm.training.shards import open_split
from ember.llm.training.trainer import TrainConfig, Trainer


def make_data(directory: Path, tokenizer, documents: list[str]) -> Path:
    named = [(f"doc{i}", text) for i, text in enumerate(documents)]
    prepare(named, tokenizer, directory, val_fraction=0.2, show_progress=False)
    return directory


def make_trainer(data: Path, run_dir: Path, tokenizer, model_config, dist=None, **overrides) -> Trainer:
    settings = {
        "steps": 6,
        "seq_len": 16,
        "micro_batch": 2,
        "batch_tokens": 64,
        "warmup_steps": 2,
        "dtype": "fp32",
    }
    config = TrainConfig(**{**settings, **overrides})
    rank, world = (dist.rank, dist.world) if dist else (0, 1)
    batches = PackedBatches(
        open_split(data, "train"), config.micro_batch, config.seq_len, seed=5, rank=rank, world=world
    )
    return Trainer(
        fresh_model(model_config, seed=1), tokenizer, config, batches, run_dir, dist=dist, show=False
    )
