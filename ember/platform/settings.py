"""One settings object, read from EMBER_* environment variables and an optional TOML file.

Precedence, highest first: environment, the TOML file (``EMBER_CONFIG`` or ``$EMBER_HOME/config.toml``),
then the defaults below. ``describe_sources`` tells where each effective value came from.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, field_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from ember.agents.types import DEFAULT_PASSAGES
from ember.home import default_home

ENV_PREFIX = "EMBER_"


def config_file_path() -> Path:
    explicit = os.environ.get("EMBER_CONFIG")
    return Path(explicit) if explicit else default_home() / "config.toml"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    home: Path = Field(default_factory=default_home, description="Ember's data directory")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; SQLite in EMBER_HOME when unset"
    )
    chunk_size: int = Field(default=384, gt=0, description="chunk budget in tokens")
    chunk_overlap: int = Field(default=64, ge=0, description="tokens repeated between chunks")
    chunk_tokenizer: str = Field(
        default="words",
        description="counts chunk tokens: 'words', a tokenizer file, or an installed model name",
    )
    max_file_mb: float = Field(default=200.0, gt=0, description="files larger than this are refused")
    sqlite_busy_timeout_ms: int = Field(default=30_000, ge=0)
    embedding_model: str = Field(
        default="sentence-transformers/all-MiniLM-L6-v2", description="sentence-transformers name or path"
    )
    reranker: str = Field(
        default="",
        description="cross-encoder: a name under $EMBER_HOME/models/rerankers, a path or a hub name; "
        "empty: models/rerankers/default if trained",
    )
    llm_model: str = Field(
        default="smollm2-135m-instruct", description="local model: a name under $EMBER_HOME/models, or a path"
    )
    llm_compile: bool = Field(
        default=False,
        description="torch.compile the decode step on CPU too (slower start, faster decode)",
    )
    llm_max_running: int = Field(
        default=16,
        ge=1,
        description="local generations decoded together (continuous batching); 1: one at a time",
    )
    llm_kv_blocks: int = Field(
        default=1024, ge=1, description="KV cache size of the local model, in blocks of 16 tokens"
    )
    llm_token_budget: int = Field(
        default=512,
        ge=1,
        description="tokens one batching step feeds at most (long prompts prefill in chunks)",
    )
    llm_max_queued: int = Field(
        default=64,
        ge=0,
        description="local generations that may wait for a running slot; beyond it the API answers 429 "
        "with Retry-After; 0: no limit",
    )
    llm_base_url: str = Field(default="", description="OpenAI-compatible endpoint; empty: the local engine")
    llm_api_key: str = Field(default="", description="API key for llm_base_url")
    llm_aligned: bool = Field(
        default=False,
        description="the local model follows instructions well enough to rewrite follow-up questions "
        "(a remote llm_base_url model always does)",
    )
    rag_passages: int = Field(
        default=DEFAULT_PASSAGES,
        ge=1,
        le=50,
        description="passages a grounded answer reads (retrieval depth); 3 suits the local 135M model "
        "(dev evals: more lowered its accuracy and tripled the prefill); raise it for a larger model",
    )
    rag_focus_sentences: int = Field(
        default=0,
        ge=0,
        le=50,
        description="sentences a grounded answer's prompt keeps from its passages, those closest to the "
        "question (0: whole passages)",
    )
    agent_constrained_tool_calls: bool = Field(
        default=False,
        description="the local agent writes tool calls under constrained decoding: always well-formed, "
        "arithmetic-only calculator expressions, and its first turn a search; for a model tuned to call "
        "tools (ember align rag), as the untuned one writes poor queries",
    )
    sync_indexes: bool = Field(
        default=True, description="embed and index chunks as they are ingested (off: SQL only, rebuild later)"
    )
    ingest_workers: int = Field(
        default_factory=lambda: min(os.cpu_count() or 1, 4), ge=1, description="processes that load and chunk"
    )

    api_max_request_mb: float = Field(
        default=1.0, gt=0, description="largest JSON request body the API takes"
    )
    api_max_upload_mb: float = Field(default=50.0, gt=0, description="largest document upload the API takes")
    api_max_tokens: int = Field(default=1024, gt=0, description="cap on max_tokens per API request")
    api_concurrency_per_key: int = Field(default=32, gt=0, description="requests in flight per API key")
    api_timeout_s: float = Field(default=300.0, gt=0, description="a generation running longer is cancelled")
    api_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="Host names the API answers besides loopback and its bind address ('*': any); "
        "others get 421, which stops DNS rebinding",
    )
    api_allowed_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list,
        description="browser origins (https://app.example) allowed to call the API, with CORS; "
        "requests from other origins get 403",
    )

    @field_validator("api_allowed_hosts", "api_allowed_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        # An environment variable holds a comma-separated list; the TOML file holds a real one.
        return (
            [item.strip() for item in value.split(",") if item.strip()] if isinstance(value, str) else value
        )

    @field_validator("home", mode="after")
    @classmethod
    def _expand_home(cls, value: Path) -> Path:
        return value.expanduser()

    @property
    def effective_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home / 'ember.db'}"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    @property
    def indexes_dir(self) -> Path:
        return self.home / "indexes"

    @property
    def rerankers_dir(self) -> Path:
        return self.models_dir / "rerankers"

    def reranker_path(self, name: str | None = None) -> str | None:
        """The cross-encoder to load for ``name`` (default: the configured one): its folder under
        models/rerankers when it has one, else ``name`` itself (a path or hub name). With no name at
        all, the trained default if there is one, else None (no reranking)."""
        name = name or self.reranker
        if not name:
            trained = self.rerankers_dir / "default"
            return str(trained) if trained.is_dir() else None
        local = self.rerankers_dir / name
        return str(local) if local.is_dir() else name

    @property
    def max_file_bytes(self) -> int:
        return int(self.max_file_mb * 1024 * 1024)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=config_file_path())
        return (init_settings, env_settings, toml)


def read_config_file() -> dict[str, Any]:
    path = config_file_path()
    if not path.exists():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config file {path} is not valid TOML: {exc}") from exc


SECRET_SETTINGS = frozenset({"llm_api_key"})
_URL_PASSWORD = re.compile(r"^([\w+.-]+://[^:/@]*):[^/]*@")  # scheme://user:PASSWORD@host...


def _shown(name: str, value: Any) -> Any:
    """A value fit to print: a secret setting as '***', and the password of any URL hidden."""
    if name in SECRET_SETTINGS:
        return "***" if value else value
    return _URL_PASSWORD.sub(r"\1:***@", value) if isinstance(value, str) else value


def describe_sources(settings: Settings) -> list[tuple[str, Any, str]]:
    """(name, effective value with secrets masked, where it came from) for every setting."""
    from_file = read_config_file()
    rows = []
    for name in Settings.model_fields:
        env_name = ENV_PREFIX + name.upper()
        if env_name in os.environ:
            source = f"env {env_name}"
        elif name in from_file:
            source = f"file {config_file_path()}"
        else:
            source = "default"
        rows.append((name, _shown(name, getattr(settings, name)), source))
    rows.append(
        ("database_url (effective)", _shown("database_url", settings.effective_database_url), "derived")
    )
    return rows


def is_loopback(host: str) -> bool:
    """True for localhost and loopback addresses: where the API may run without keys."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
