"""One real SmolLM2 model and one small real collection (SQLite + BM25/FAISS indexes) per session."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ember.agents.backends import LocalBackend
from ember.agents.chat_model import EmberChatModel
from ember.platform.index_sync import IndexSync
from ember.platform.service import EmberService
from ember.platform.settings import Settings

# Invented facts, so the model cannot answer from memory and a correct answer must come from retrieval.
DOCUMENTS = {
    "kelmora-bridge.md": "# Kelmora Bridge\n\nThe Kelmora Bridge crosses the Vessa river. "
    "The Kelmora Bridge is 412 meters long. It was opened in 1987 by the engineer Ilse Marten.\n",
    "tarn-observatory.md": "# Tarn Observatory\n\nThe Tarn Observatory stands on Mount Orrin. "
    "Its main telescope has a mirror 3 meters wide. The observatory employs 27 astronomers.\n",
    "glass-orchard.md": "# The Glass Orchard\n\nThe Glass Orchard is a greenhouse in the town of Pell. "
    "It grows 140 varieties of pear. Visitors pay 8 crowns for a ticket.\n",
}
COLLECTION = "facts"


@pytest.fixture(scope="session")
def facts_service(tmp_path_factory, smollm2_models_dir: Path) -> Iterator[EmberService]:
    root = tmp_path_factory.mktemp("agents")
    docs = root / "docs"
    docs.mkdir()
    for name, text in DOCUMENTS.items():
        (docs / name).write_text(text, encoding="utf-8")
    settings = Settings(
        home=root / "home",
        database_url=f"sqlite:///{root / 'ember.db'}",
        llm_model=str(smollm2_models_dir / "smollm2-135m-instruct"),
        reranker="",
    )
    service = EmberService(settings)
    service.ingest_hook = IndexSync(service.db, service.index_store)
    service.ingest(str(docs), COLLECTION)
    yield service
    service.db.dispose()


@pytest.fixture(scope="session")
def local_llm(facts_service: EmberService) -> EmberChatModel:
    return EmberChatModel(backend=LocalBackend(facts_service.scheduler), sampling={"max_tokens": 48})


@pytest.fixture(scope="session")
def facts_search(facts_service: EmberService):  # noqa: ANN201
    def search(query: str, k: int):  # noqa: ANN202
        return facts_service.search(query, [COLLECTION], k=k, mode="hybrid").hits

    return search
