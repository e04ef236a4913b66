"""A home with two collections and the real SmolLM2, for driving the chat app with Pilot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ember.platform.service import EmberService
from tests.api.conftest import DOCS, make_settings


@pytest.fixture(scope="session")
def ui_service(tmp_path_factory, smollm2_models_dir) -> Iterator[EmberService]:
    home = tmp_path_factory.mktemp("ui-home")
    docs = tmp_path_factory.mktemp("ui-docs")
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    service = EmberService(make_settings(home, smollm2_models_dir))
    service.ingest(str(docs), "notes")
    service.ingest(str(docs / "gardens.md"), "gardens")
    yield service
    service.db.dispose()
