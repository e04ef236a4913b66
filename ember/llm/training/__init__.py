"""Training Ember's own model: data shards, the loop, optimizers, checkpoints (pretrain, SFT, DPO, LoRA)."""
