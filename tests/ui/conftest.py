"""A home with three collections and the real SmolLM2, for driving the chat app with Pilot."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ember.platform.service import EmberService
from tests.api.conftest import DOCS, make_settings

# Source text whose underscores Markdown would read as emphasis: the chunk viewer must show it as written.
CODE_DOCS = {
    "context.txt": "Context managers\n\nA with statement calls __enter__() on entry, __exit__() on exit.\n",
    "guide.md": "# Guide\n\nThe **with** statement wraps a block.\n",
}


@pytest.fixture(scope="session")
def ui_service(tmp_path_factory, smollm2_models_dir) -> Iterator[EmberService]:
    home = tmp_path_factory.mktemp("ui-home")
    docs = tmp_path_factory.mktemp("ui-docs")
    for name, text in DOCS.items():
        (docs / name).write_text(text, encoding="utf-8")
    code = tmp_path_factory.mktemp("ui-code")
    for name, text in CODE_DOCS.items():
        (code / name).write_text(text, encoding="utf-8")
    service = EmberService(make_settings(home, smollm2_models_dir))
    service.ingest(str(docs), "notes")
    service.ingest(str(docs / "gardens.md"), "gardens")
    service.ingest(str(code), "code")
    yield service
    service.close()
