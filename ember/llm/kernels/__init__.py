"""Native CPU kernels that torch does not ship, built on first use with the local C++ compiler.

Decode kernels live here: int8 x int8 and int4 x int8 linear layers (int8_gemv.cpp,
int4_gemv.cpp), one-query attention over a cache prefix (decode_attention.cpp), and a whole decoder
block of single-sequence decode built from them (decode_block.cpp). They need
AVX512-VNNI; where the CPU lacks it, or no compiler or ninja is found, ``cpu_kernels_available``
returns False and the model keeps torch's own kernels. ``EMBER_NATIVE_KERNELS=false`` turns them off.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import re
from pathlib import Path

log = logging.getLogger(__name__)

HERE = Path(__file__).parent
SOURCES = [
    str(HERE / name)
    for name in ("int8_gemv.cpp", "int4_gemv.cpp", "decode_attention.cpp", "decode_block.cpp")
]
CPU_FLAGS = ("avx512f", "avx512bw", "avx512vl", "avx512_vnni")
COMPILE_FLAGS = ["-O3", "-fopenmp", "-mavx512f", "-mavx512bw", "-mavx512vl", "-mavx512vnni", "-mfma"]


@functools.cache
def _cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    flags_line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return frozenset(flags_line.split(":", 1)[-1].split())


def cpu_has_vnni() -> bool:
    return all(flag in _cpu_flags() for flag in CPU_FLAGS)


def cpu_has_amx() -> bool:
    """AMX tiles: oneDNN's bf16 matrix products there outrun Ember's int8 kernels on long inputs."""
    return "amx_bf16" in _cpu_flags()


def cpu_has_native_bf16() -> bool:
    """bf16 dot products in hardware (AVX512-BF16 or AMX): where bf16 matmuls beat fp32 on this CPU."""
    return bool({"avx512_bf16", "amx_bf16"} & _cpu_flags())


def _put_ninja_on_path() -> None:
    """torch's extension builder calls `ninja` from PATH; the pip package puts it beside Python."""
    try:
        import ninja
    except ImportError:
        return
    os.environ["PATH"] = f"{ninja.BIN_DIR}{os.pathsep}{os.environ.get('PATH', '')}"


def _source_digest() -> str:
    """Digest of every kernel file: torch rebuilds when its build flags change, headers included."""
    digest = hashlib.sha256()
    for path in sorted(HERE.iterdir()):
        if path.suffix in (".cpp", ".h"):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def cpu_kernels_available() -> bool:
    """Build (once per source version; later loads take a fraction of a second) and load the kernels."""
    if os.environ.get("EMBER_NATIVE_KERNELS", "true").lower() in ("0", "false", "no", "off"):
        return False
    if not cpu_has_vnni():
        return False
    import torch
    from torch.utils.cpp_extension import load

    _put_ninja_on_path()
    # bfloat16 dot products for a bfloat16 KV cache's keys, where the CPU has them (decode_attention.cpp).
    bf16_flags = ["-mavx512bf16"] if "avx512_bf16" in _cpu_flags() else []
    log.info("loading Ember's CPU kernels (the first load compiles them, about 30 s)")
    try:
        load(
            # One build per torch version: a kernel built against another torch's ABI must not load.
            name="ember_cpu_kernels_" + re.sub(r"\W", "_", torch.__version__),
            sources=SOURCES,
            extra_cflags=COMPILE_FLAGS + bf16_flags + [f"-DEMBER_KERNELS_SOURCE={_source_digest()}"],
            extra_ldflags=["-fopenmp"],
            is_python_module=False,
        )
    except Exception as error:  # any failure to build or load means: keep torch's kernels
        log.warning("Ember's CPU kernels could not be built, using torch's: %s", error)
        return False
    ops = torch.ops.ember_kernels
    names = ("int8_linear", "int4_linear", "decode_attention", "paged_decode_attention", "decode_block")
    return all(hasattr(ops, name) for name in names)
