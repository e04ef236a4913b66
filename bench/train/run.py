"""Training tokens/s: Ember's loop (Trainer.train_step) against a plain PyTorch loop over HF
LlamaForCausalLM of the same shape, batch, dtype and optimizer (AdamW), in the same run, alternating.

    OMP_NUM_THREADS=1 python bench/train/run.py --steps 6 [--compile] [--device cuda] [--dtype fp32]

Device-agnostic. Both sides run the dtype the trainer picks: with ``--dtype auto``, bf16 autocast on CUDA
and on CPUs with bf16 hardware (AVX512-BF16, AMX), else fp32.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ember.llm.training.models import config_for_depth, fresh_model
from ember.llm.training.trainer import TrainConfig, Trainer


class RandomBatches:
    """Fixed random token rows (the data path is not what is measured)."""

    def __init__(self, rows: int, seq_len: int, vocab: int) -> None:
        self.batch = torch.randint(0, vocab, (rows, seq_len + 1), generator=torch.Generator().manual_seed(0))

    def next_batch(self):
        return self.batch[:, :-1], self.batch[:, 1:]

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


def hf_model(config, device):
    from transformers import LlamaConfig, LlamaForCausalLM

    hf = LlamaConfig(
        vocab_size=config.vocab_size,
        hidden_size=config.d_model,
        intermediate_size=config.ffn_dim,
        num_hidden_layers=config.n_layers,
        num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_kv_heads,
        max_position_embeddings=config.max_seq_len,
        rms_norm_eps=config.norm_eps,
        rope_theta=config.rope_theta,
        tie_word_embeddings=config.tie_embeddings,
        attn_implementation="sdpa",
    )
    return LlamaForCausalLM(hf).to(device).train()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--depth", type=int, default=4)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=4096)
    parser.add_argument("--seq-len", type=int, default=128)
    parser.add_argument("--rows", type=int, default=8)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--compile", action="store_true")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--dtype", choices=("auto", "fp32", "bf16"), default="auto")
    args = parser.parse_args()
    device = torch.device(args.device)
    config = config_for_depth(args.depth, args.vocab, args.seq_len, args.width)
    tokens = args.rows * args.seq_len
    train = TrainConfig(
        steps=10**9,
        seq_len=args.seq_len,
        micro_batch=args.rows,
        batch_tokens=tokens,
        optimizer="adamw",
        lr=1e-3,
        grad_clip=1.0,
        dtype=args.dtype,
        compile=args.compile,
    )
    batches = RandomBatches(args.rows, args.seq_len, args.vocab)
    with tempfile.TemporaryDirectory() as run_dir:
        ember = Trainer(fresh_model(config, 0), None, train, batches, Path(run_dir), show=False)
        bf16 = ember.bf16
        hf = hf_model(config, device)
        optimizer = torch.optim.AdamW(hf.parameters(), lr=1e-3, betas=(0.9, 0.95), eps=1e-8)
        inputs, targets = (t.to(device) for t in batches.next_batch())

        def hf_step() -> float:
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                logits = hf(inputs).logits
                loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(hf.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            return loss.item()

        def timed(step) -> float:
            step()  # warm-up (and compile)
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            for _ in range(args.steps):
                step()
            if device.type == "cuda":
                torch.cuda.synchronize()
            return args.steps * tokens / (time.perf_counter() - start)

        results = {"ember": [], "hf": []}
        for _ in range(args.rounds):
            results["ember"].append(timed(ember.train_step))
            results["hf"].append(timed(hf_step))
    best = {name: max(values) for name, values in results.items()}
    params = sum(p.numel() for p in ember.model.parameters())
    print(
        f"device {device}, {params / 1e6:.1f}M params, {args.rows}x{args.seq_len} tokens/step, AdamW, "
        f"{'bf16' if bf16 else 'fp32'}, threads {torch.get_num_threads()}, compile {args.compile}"
    )
    for name, value in best.items():
        print(f"{name:6s} {value:10.0f} tokens/s  (rounds: {', '.join(f'{v:.0f}' for v in results[name])})")
    print(f"ratio ember/hf: {best['ember'] / best['hf']:.2f}")


if __name__ == "__main__":
    main()
