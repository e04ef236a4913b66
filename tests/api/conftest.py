"""One Ember home with a small collection, served by a real uvicorn server with auth on."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from ember.platform.api.app import create_app
from ember.platform.service import EmberService
from ember.platform.settings import Settings
from tests.api.server import running

DOCS = {
    "kettles.md": "# Kettles\n\nThe Aldermoor kettle boils one litre of water in ninety seconds. "
    "Its heating element is made of copper and it switches off automatically when the water boils.\n",
    "gardens.md": "# Gardens\n\nThe Brackenfield garden grows blue tomatoes in raised beds. "
    "The beds are watered every morning at six by a drip system fed from a rain barrel.\n",
    "trains.md": "# Trains\n\nThe Corrowdale night train leaves at 23:40 and reaches the coast at dawn. "
    "Its sleeper cars have four bunks each and a small washbasin.\n",
}
LIMITS = dict(api_max_tokens=64, api_max_request_mb=0.05, api_max_upload_mb=0.1, api_concurrency_per_key=24)


def make_settings(home: Path, models_dir: Path, **overrides) -> Settings:
    return Settings(
        home=home,
        database_url=f"sqlite:///{home / 'ember.db'}",
        llm_model=str(models_dir / "smollm2-135m-instruct"),
        **{**LIMITS, **overrides},
    )


@pytest.fixture(scope="session")
def api_service(tmp_path_factory, smollm2_models_dir) -> Iterator[EmberService]:
    home = tmp_path_factory.mktemp("api-home")
    docs = tmp_path_factory.mktemp("api-docs")
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    service = EmberService(make_settings(home, smollm2_models_dir))
    service.ingest(str(docs), "notes")
    yield service
    service.db.dispose()


@pytest.fixture(scope="session")
def keys(api_service) -> dict[str, str]:
    """Plaintext keys by name: one per scope, and one that is revoked."""
    made = {scope: api_service.create_key(f"{scope}-key", [scope])[1] for scope in ("read", "write", "admin")}
    info, made["revoked"] = api_service.create_key("revoked-key", ["admin"])
    api_service.revoke_key(str(info.id))
    return made


@pytest.fixture(scope="session")
def base_url(api_service, keys) -> Iterator[str]:
    with running(create_app(api_service, auth_required=True)) as url:
        yield url


@pytest.fixture(scope="session")
def admin(base_url, keys) -> Iterator[httpx.Client]:
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {keys['admin']}"}, timeout=120
    ) as c:
        yield c


@pytest.fixture(scope="session")
def openai_client(base_url, keys):  # noqa: ANN201
    from openai import OpenAI

    return OpenAI(base_url=f"{base_url}/v1", api_key=keys["admin"], timeout=120, max_retries=0)


@pytest.fixture(scope="session")
def model_id(api_service) -> str:
    return Path(api_service.settings.llm_model).name


FUZZ_MAX_TOKENS = 4  # chat cases decode at most this many tokens, so hundreds of cases stay quick


@pytest.fixture(scope="session")
def fuzz_service(tmp_path_factory, smollm2_models_dir) -> Iterator[EmberService]:
    """A home of its own for the schema fuzz: its generated deletes and renames must not reach the
    collection the other API tests share."""
    home = tmp_path_factory.mktemp("fuzz-home")
    docs = tmp_path_factory.mktemp("fuzz-docs")
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    service = EmberService(make_settings(home, smollm2_models_dir, api_max_tokens=FUZZ_MAX_TOKENS))
    service.ingest(str(docs), "notes")
    yield service
    service.db.dispose()


@pytest.fixture(scope="session")
def fuzz_base_url(fuzz_service) -> Iterator[str]:
    with running(create_app(fuzz_service, auth_required=True)) as url:
        yield url
