"""llama.cpp (through llama-cpp-python) timed the same way as Ember: TTFT of a prompt, then decode tok/s.

Optional: `CMAKE_ARGS="-DGGML_NATIVE=ON" pip install llama-cpp-python==0.3.36` (builds from source,
about 10 minutes on 2 cores). The GGUF files are written by Ember's own exporter from the same fp32
checkpoint the Ember modes are made from, so each precision pair starts from identical weights.
"""

from __future__ import annotations

import time
from pathlib import Path

from ember.llm.imports.gguf_export import write_gguf
from ember.llm.inference.checkpoint import load_model, load_tokenizer

# Ember mode -> the llama.cpp type at matched precision.
MATCHED_TYPE = {"fp32": "f16", "bf16": "f16", "int8": "q8_0", "int4": "q4_0"}


def export_for_llama_cpp(base: Path, work: Path, gguf_type: str) -> Path:
    """The fp32 checkpoint ``base`` as a GGUF of ``gguf_type`` (written once, reused)."""
    out = work / f"smollm2-{gguf_type}.gguf"
    if not out.is_file():
        write_gguf(load_model(base), load_tokenizer(base), out, gguf_type, "SmolLM2-135M-Instruct")
    return out


def load_llama_cpp(gguf: Path, threads: int, context: int):
    from llama_cpp import Llama

    return Llama(
        model_path=str(gguf), n_threads=threads, n_threads_batch=threads, n_ctx=context,
        n_batch=512, verbose=False,
    )  # fmt: skip


def time_llama_cpp(llm, prompt: list[int], decode_tokens: int) -> tuple[float, float]:
    """(time to first token, decode tok/s after it), greedy, with no prefix reused from the last call."""
    llm.reset()  # generate() would otherwise reuse the KV cache of a matching prefix
    start = time.perf_counter()
    tokens = llm.generate(prompt, temp=0.0, reset=True)
    next(tokens)
    first = time.perf_counter()
    for _ in range(decode_tokens):
        next(tokens)
    return first - start, decode_tokens / (time.perf_counter() - first)
