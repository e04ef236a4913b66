"""Import HF tokenizer.json files of byte-level BPE models (GPT-2 and SmolLM2 families)."""

from __future__ import annotations

import json
from pathlib import Path

from ember.llm.tokenizer.byte_level import from_byte_level_vocab
from ember.llm.tokenizer.patterns import GPT2_DIGITS_PATTERN, GPT2_PATTERN
from ember.llm.tokenizer.tokenizer import Tokenizer


def _byte_level_regex(path: Path, step: dict) -> bool:
    if step.get("add_prefix_space"):
        raise ValueError(f"{path}: ByteLevel with add_prefix_space=true is not supported")
    return step.get("use_regex", True)


def pattern_of(path: Path, pre_tokenizer: dict | None) -> str:
    """One split regex equivalent to the HF pre-tokenizer (the shapes byte-level BPE models use)."""
    kind = (pre_tokenizer or {}).get("type")
    if kind == "ByteLevel" and _byte_level_regex(path, pre_tokenizer):
        return GPT2_PATTERN
    if kind == "Sequence":
        steps = pre_tokenizer["pretokenizers"]
        kinds = [step["type"] for step in steps]
        if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits"):
            if _byte_level_regex(path, steps[1]):
                return GPT2_DIGITS_PATTERN
        if kinds == ["Split", "ByteLevel"] and not _byte_level_regex(path, steps[1]):
            split = steps[0]
            if (
                split.get("behavior") == "Isolated"
                and not split.get("invert")
                and "Regex" in split["pattern"]
            ):
                return split["pattern"]["Regex"]
    raise ValueError(
        f"{path}: unsupported pre-tokenizer for byte-level BPE: {json.dumps(pre_tokenizer)[:200]}"
    )


def _token_text(value: object) -> str | None:
    """tokenizer_config.json writes special tokens as strings or as {"content": ...} objects."""
    if isinstance(value, dict):
        return value.get("content")
    return value if isinstance(value, str) else None


def _chat_template(folder: Path, config: dict) -> str | None:
    template = config.get("chat_template")
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        template = next((t["template"] for t in template if t.get("name") == "default"), None)
    jinja_file = folder / "chat_template.jinja"
    if template is None and jinja_file.exists():
        template = jinja_file.read_text(encoding="utf-8")
    return template


def load_hf_tokenizer(path: str | Path) -> Tokenizer:
    """Read tokenizer.json, plus chat template and bos/eos/pad names from a sibling tokenizer_config.json."""
    path = Path(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    model = data.get("model", {})
    if model.get("type") != "BPE":
        raise ValueError(f"{path}: expected a BPE model, got {model.get('type')!r}")
    if data.get("normalizer") is not None:
        raise ValueError(f"{path}: normalizers are not supported for byte-level BPE")
    if (data.get("decoder") or {}).get("type") != "ByteLevel":
        raise ValueError(f"{path}: expected a ByteLevel decoder (byte-level BPE)")
    merges = [tuple(m.split(" ", 1)) if isinstance(m, str) else tuple(m) for m in model["merges"]]
    specials = {t["content"]: t["id"] for t in data.get("added_tokens", [])}
    config_path = path.parent / "tokenizer_config.json"
    config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
    names = {role: _token_text(config.get(f"{role}_token")) for role in ("bos", "eos", "pad")}
    return from_byte_level_vocab(
        str(path),
        pattern_of(path, data.get("pre_tokenizer")),
        model["vocab"],
        merges,
        specials,
        chat_template=_chat_template(path.parent, config),
        bos_token=names["bos"] if names["bos"] in specials else None,
        eos_token=names["eos"] if names["eos"] in specials else None,
        pad_token=names["pad"] if names["pad"] in specials else None,
        name=path.parent.name or "hf",
    )
