"""LoRA adapters on Ember's Transformer, saved in HF PEFT's format, merged into a plain model.

An adapter adds ``scaling * B @ A`` (A: rank x in, B: out x rank, scaling = alpha / rank) to chosen
linear layers, and may replace chosen rows of the token embedding (new special tokens) with trainable
ones; with tied embeddings the LM head reads the same rows, as PEFT's tied token adapter does.

On disk (PEFT, for a LlamaForCausalLM base): ``adapter_config.json`` and ``adapter_model.safetensors``
with keys like ``base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight``. Ember adds
``ember_adapter.json``: the base model's name and a fingerprint of its weights, so an adapter is never
applied to another base.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn

from ember.llm.inference.model import Transformer

ADAPTER_CONFIG, ADAPTER_WEIGHTS, EMBER_ADAPTER = (
    "adapter_config.json",
    "adapter_model.safetensors",
    "ember_adapter.json",
)
# Ember's linear layers and their names in HF's LlamaForCausalLM (PEFT's target_modules).
HF_NAMES = {
    "wq": "q_proj",
    "wk": "k_proj",
    "wv": "v_proj",
    "wo": "o_proj",
    "w_gate": "gate_proj",
    "w_up": "up_proj",
    "w_down": "down_proj",
}
_HF_PARENTS = {"attn": "self_attn", "ffn": "mlp"}
_PEFT_PREFIX = "base_model.model.model."
_TOKEN_ROWS_KEY = _PEFT_PREFIX + "embed_tokens.token_adapter.trainable_tokens_delta"


@dataclass
class LoraSpec:
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = tuple(HF_NAMES)
    token_ids: tuple[int, ...] = field(default_factory=tuple)  # embedding rows trained in full

    def __post_init__(self) -> None:
        unknown = sorted(set(self.targets) - set(HF_NAMES))
        if unknown or not self.targets:
            raise ValueError(f"LoRA targets must be among {list(HF_NAMES)}, got {list(self.targets)}")
        if self.rank < 1:
            raise ValueError(f"LoRA rank must be at least 1, got {self.rank}")

    @property
    def scaling(self) -> float:
        return self.alpha / self.rank


class LoraLinear(nn.Module):
    """A frozen linear layer plus a trainable low-rank update, initialised as PEFT does (B = 0)."""

    def __init__(self, base: nn.Linear, spec: LoraSpec) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.scaling = spec.scaling
        self.lora_A = nn.Parameter(torch.empty(spec.rank, base.in_features, device=base.weight.device))
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, spec.rank, device=base.weight.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
        self.dropout = nn.Dropout(spec.dropout) if spec.dropout else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        update = F.linear(F.linear(self.dropout(x), self.lora_A.to(x.dtype)), self.lora_B.to(x.dtype))
        return self.base(x) + update * self.scaling

    def merged(self) -> nn.Linear:
        weight = self.base.weight.detach() + self.scaling * (self.lora_B @ self.lora_A).detach()
        linear = nn.Linear(self.base.in_features, self.base.out_features, bias=False, device=weight.device)
        linear.weight = nn.Parameter(weight.to(self.base.weight.dtype), requires_grad=False)
        return linear


class TokenRowsEmbedding(nn.Module):
    """An embedding whose rows ``token_ids`` are replaced by trainable ones (PEFT's TrainableTokens)."""

    def __init__(self, base: nn.Embedding, token_ids: tuple[int, ...]) -> None:
        super().__init__()
        self.base = base.requires_grad_(False)
        self.register_buffer(
            "token_ids", torch.tensor(token_ids, dtype=torch.long, device=base.weight.device)
        )
        self.rows = nn.Parameter(base.weight.detach()[self.token_ids].clone())

    def weight(self) -> torch.Tensor:
        return self.base.weight.index_copy(0, self.token_ids, self.rows.to(self.base.weight.dtype))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return F.embedding(tokens, self.weight())


class TiedHead(nn.Module):
    """The LM head of a tied model reads the embedding's weight, trained rows included."""

    def __init__(self, embedding: TokenRowsEmbedding) -> None:
        super().__init__()
        self._embedding = [embedding]  # a list: not a submodule, so its parameters are not counted twice

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self._embedding[0].weight().to(x.dtype))


def attach_lora(model: Transformer, spec: LoraSpec) -> Transformer:
    """Freeze ``model`` and add adapters in place; only the adapters' parameters train."""
    if any(isinstance(m, LoraLinear | TokenRowsEmbedding) for m in model.modules()):
        raise ValueError("this model already carries a LoRA adapter: merge it first")
    model.requires_grad_(False)
    for block in model.layers:
        for parent_name in _HF_PARENTS:
            parent = getattr(block, parent_name)
            for name in spec.targets:
                if isinstance(getattr(parent, name, None), nn.Linear):
                    setattr(parent, name, LoraLinear(getattr(parent, name), spec))
    if spec.token_ids:
        bad = [i for i in spec.token_ids if not 0 <= i < model.config.vocab_size]
        if bad:
            raise ValueError(f"token ids {bad} are outside the vocabulary of {model.config.vocab_size}")
        model.tok_emb = TokenRowsEmbedding(model.tok_emb, tuple(spec.token_ids))
        if model.config.tie_embeddings:
            model.lm_head = TiedHead(model.tok_emb)
    return model


def _adapted_layers(model: Transformer):
    """(Ember layer index, parent name, layer name, LoraLinear) of every adapted linear layer."""
    for index, block in enumerate(model.layers):
        for parent_name in _HF_PARENTS:
            for name, module in getattr(block, parent_name).named_children():
                if isinstance(module, LoraLinear):
                    yield index, parent_name, name, module


def _peft_key(index: int, parent: str, name: str, matrix: str) -> str:
    return f"{_PEFT_PREFIX}layers.{index}.{_HF_PARENTS[parent]}.{HF_NAMES[name]}.{matrix}.weight"


def adapter_state(model: Transformer) -> dict[str, torch.Tensor]:
    """The adapter's tensors under PEFT's key names."""
    state = {}
    for index, parent, name, module in _adapted_layers(model):
        state[_peft_key(index, parent, name, "lora_A")] = module.lora_A.detach().float().cpu().contiguous()
        state[_peft_key(index, parent, name, "lora_B")] = module.lora_B.detach().float().cpu().contiguous()
    if isinstance(model.tok_emb, TokenRowsEmbedding):
        state[_TOKEN_ROWS_KEY] = model.tok_emb.rows.detach().float().cpu().contiguous()
    return state


def base_fingerprint(model: Transformer) -> str:
    """A short hash of a model's shape and some of its weights: tells one base model from another."""
    digest = hashlib.sha256(json.dumps(model.config.to_dict(), sort_keys=True).encode())
    embedding = model.tok_emb.base if isinstance(model.tok_emb, TokenRowsEmbedding) else model.tok_emb
    last = model.layers[-1].ffn.w_down
    last = last.base if isinstance(last, LoraLinear) else last
    for tensor in (embedding.weight[-8:], model.norm.weight, last.weight[:2]):
        digest.update(tensor.detach().float().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()[:16]


def save_adapter(model: Transformer, spec: LoraSpec, directory: Path, base_name: str) -> Path:
    """Write the adapter of ``model`` (trained on the base called ``base_name``) in PEFT's format."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        "base_model_name_or_path": base_name,
        "r": spec.rank,
        "lora_alpha": spec.alpha,
        "lora_dropout": spec.dropout,
        "target_modules": sorted(HF_NAMES[name] for name in spec.targets),
        "bias": "none",
        "fan_in_fan_out": False,
        "use_rslora": False,
        "use_dora": False,
        "init_lora_weights": True,
        "inference_mode": True,
        "modules_to_save": None,
        "trainable_token_indices": list(spec.token_ids) or None,
    }
    (directory / ADAPTER_CONFIG).write_text(json.dumps(config, indent=2) + "\n")
    save_file(adapter_state(model), str(directory / ADAPTER_WEIGHTS))
    ember = {"base_model": base_name, "base_fingerprint": base_fingerprint(model)}
    (directory / EMBER_ADAPTER).write_text(json.dumps(ember, indent=2) + "\n")
    return directory


def read_adapter_spec(directory: Path) -> LoraSpec:
    """The LoraSpec of the PEFT adapter in ``directory``."""
    path = Path(directory) / ADAPTER_CONFIG
    if not path.is_file():
        raise FileNotFoundError(f"{directory} holds no LoRA adapter ({ADAPTER_CONFIG} is missing)")
    config = json.loads(path.read_text())
    if config.get("peft_type") != "LORA":
        raise ValueError(f"{path}: peft_type is {config.get('peft_type')!r}, Ember reads LORA adapters only")
    ember_names = {hf: ours for ours, hf in HF_NAMES.items()}
    targets = config["target_modules"]
    unknown = [t for t in targets if t not in ember_names]
    if unknown:
        raise ValueError(f"{path}: target_modules {unknown} have no counterpart in Ember's model")
    return LoraSpec(
        rank=int(config["r"]),
        alpha=float(config["lora_alpha"]),
        dropout=float(config.get("lora_dropout") or 0.0),
        targets=tuple(ember_names[t] for t in targets),
        token_ids=tuple(config.get("trainable_token_indices") or ()),
    )


def adapter_base(directory: Path) -> dict:
    """``{"base_model", "base_fingerprint"}`` recorded with an Ember-saved adapter ({} for a foreign one)."""
    path = Path(directory) / EMBER_ADAPTER
    return json.loads(path.read_text()) if path.is_file() else {}


def load_adapter(model: Transformer, directory: Path, model_name: str = "the given model") -> Transformer:
    """Attach the adapter saved in ``directory`` to ``model`` in place, after checking it was trained on
    this base; ``model_name`` names the base in the error."""
    directory = Path(directory)
    spec = read_adapter_spec(directory)
    recorded = adapter_base(directory)
    if recorded and recorded["base_fingerprint"] != base_fingerprint(model):
        raise ValueError(
            f"the adapter in {directory} was trained on the model {recorded['base_model']!r}, "
            f"not on {model_name!r}: their weights differ"
        )
    attach_lora(model, spec)
    state = load_file(str(directory / ADAPTER_WEIGHTS))
    expected = adapter_state(model)
    if set(state) != set(expected):
        missing, extra = sorted(set(expected) - set(state)), sorted(set(state) - set(expected))
        raise ValueError(
            f"{directory / ADAPTER_WEIGHTS} does not fit {model_name!r}: missing {missing[:3]}, "
            f"unexpected {extra[:3]}"
        )
    for index, parent, name, module in _adapted_layers(model):
        for matrix in ("lora_A", "lora_B"):
            tensor = state[_peft_key(index, parent, name, matrix)]
            if tensor.shape != getattr(module, matrix).shape:
                raise ValueError(
                    f"{directory}: {matrix} of layer {index} {name} has shape {tuple(tensor.shape)}, "
                    f"{model_name!r} needs {tuple(getattr(module, matrix).shape)}"
                )
            getattr(module, matrix).data.copy_(tensor)
    if spec.token_ids:
        model.tok_emb.rows.data.copy_(state[_TOKEN_ROWS_KEY])
    return model


def merge_lora(model: Transformer) -> Transformer:
    """Fold every adapter into the plain layers in place: the result is an ordinary Transformer."""
    for block in model.layers:
        for parent_name in _HF_PARENTS:
            parent = getattr(block, parent_name)
            for name, module in list(parent.named_children()):
                if isinstance(module, LoraLinear):
                    setattr(parent, name, module.merged())
    if isinstance(model.tok_emb, TokenRowsEmbedding):
        embedding = model.tok_emb.base
        embedding.weight = nn.Parameter(model.tok_emb.weight().detach(), requires_grad=False)
        model.tok_emb = embedding
        if model.config.tie_embeddings:
            model.lm_head = nn.Linear(
                model.config.d_model, model.config.vocab_size, bias=False, device="meta"
            )
            model.lm_head.weight = embedding.weight
    return model
