"""`run.py cpu --check`: which kernel each layer of each mode runs, and the machine facts that decide it.

Two records of the same bench can differ by 1.5x when one machine has AVX512-VNNI (Ember's C++ kernels)
and the other has not (torch's weight-only kernels), or when the clock or thread placement differ; this
prints all of it next to the numbers.
"""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import torch
from rich.table import Table

from ember.llm.inference.engine import Engine
from ember.llm.inference.quantize import Int4Linear, Int8Linear
from ember.llm.kernels import CPU_FLAGS, cpu_has_vnni, cpu_kernels_available


def machine_facts(threads: int) -> dict[str, str]:
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").is_file() else ""
    lines = cpuinfo.splitlines()
    model = next((line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")), "?")
    clocks = [float(line.split(":", 1)[1]) for line in lines if line.startswith("cpu MHz")]
    flags = set(next((line for line in lines if line.startswith("flags")), "").split())
    wanted = (*CPU_FLAGS, "avx2", "amx_int8", "amx_bf16", "avx512_bf16")
    return {
        "cpu": model,
        "clock (MHz, per core)": ", ".join(f"{mhz:.0f}" for mhz in clocks) or "?",
        "flags": " ".join(f"{flag}{'+' if flag in flags else '-'}" for flag in wanted),
        "AVX512-VNNI": str(cpu_has_vnni()),
        "Ember kernels built": str(cpu_kernels_available()),
        "torch threads / affinity": f"{threads} / cores {sorted(os.sched_getaffinity(0))}",
        "torch": torch.__version__,
    }


def kernel_paths(engine: Engine) -> Counter:
    """(module kind, kernel) -> number of layers, for the linear layers and attention."""
    model = engine.model
    paths: Counter = Counter()
    for module in model.modules():
        if isinstance(module, Int8Linear | Int4Linear):
            kernel = getattr(module, "kernel", None) or "dequantize + F.linear"
            # Ember's kernels quantize the activations to int8; torch's compute in compute_dtype.
            computes = "int8 activations" if kernel == "vnni" else module.compute_dtype
            paths[(type(module).__name__, f"{kernel} ({computes})")] += 1
        elif isinstance(module, torch.nn.Linear):
            paths[("Linear", f"F.linear ({module.weight.dtype})")] += 1
    for block in model.layers:
        attention = "ember decode_attention" if block.attn.native_decode else "torch SDPA"
        paths[("Attention (decode)", attention)] += 1
        step = "ember decode_block (one call)" if block.fused_decode is not None else "op by op"
        paths[("Block (batch-1 decode)", step)] += 1
    paths[("KV cache", str(engine.kv_dtype).removeprefix("torch."))] += model.config.n_layers
    return paths


def check_table(engines: dict[str, Engine], threads: int) -> tuple[Table, Table]:
    facts = Table(title="machine")
    facts.add_column("fact")
    facts.add_column("value")
    for key, value in machine_facts(threads).items():
        facts.add_row(key, value)
    paths = Table(title="kernel path per layer")
    for column in ("mode", "layer kind", "kernel (what it computes in)", "layers"):
        paths.add_column(column)
    for label, engine in engines.items():
        for (kind, kernel), count in sorted(kernel_paths(engine).items()):
            paths.add_row(label, kind, kernel, str(count))
    return facts, paths
