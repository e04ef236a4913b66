"""Upload names keep their identity: names that look alike once made safe stay separate documents,
the original name is what users see, and a name too long for the file system still works."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest

from ember.platform.api.app import create_app
from ember.platform.service import EmberService
from ember.platform.settings import Settings
from tests.api.server import running


@pytest.fixture(scope="module")
def client(tmp_path_factory) -> Iterator[httpx.Client]:
    home = tmp_path_factory.mktemp("uploads-home")
    # SQL only: these tests are about which documents exist, not about search.
    settings = Settings(home=home, database_url=f"sqlite:///{home / 'ember.db'}", sync_indexes=False)
    service = EmberService(settings)
    with (
        running(create_app(service, auth_required=False)) as url,
        httpx.Client(base_url=url, timeout=60) as c,
    ):
        yield c
    service.db.dispose()


def _upload(client: httpx.Client, collection: str, name: str, content: bytes) -> dict:
    response = client.post(f"/v1/collections/{collection}/documents", files={"file": (name, content)})
    assert response.status_code == 202, response.text
    deadline = time.monotonic() + 60
    while True:
        job = client.get(f"/v1/jobs/{response.json()['id']}").json()
        if job["status"] not in ("queued", "running") or time.monotonic() > deadline:
            return job
        time.sleep(0.1)


def _documents(client: httpx.Client, collection: str) -> list[dict]:
    return client.get(f"/v1/collections/{collection}/documents").json()["data"]


def test_names_that_sanitise_alike_stay_separate_documents(client):
    client.post("/v1/collections", json={"name": "reports"})
    first = _upload(client, "reports", "报告.txt", b"The harbour report counts forty boats.\n")
    second = _upload(client, "reports", "笔记.txt", b"The field notes mention three herons.\n")
    assert first["status"] == second["status"] == "completed"
    assert (first["filename"], second["filename"]) == ("报告.txt", "笔记.txt")
    assert sorted(d["title"] for d in _documents(client, "reports")) == ["报告", "笔记"]
    assert sum(d["chunks"] for d in _documents(client, "reports")) == 2  # the first content is kept


def test_the_same_name_again_updates_its_document(client):
    client.post("/v1/collections", json={"name": "revisions"})
    _upload(client, "revisions", "plan.md", b"# Plan\n\nBuild the shed in May.\n")
    again = _upload(client, "revisions", "plan.md", b"# Plan\n\nBuild the shed in June.\n")
    assert again["status"] == "completed" and again["counts"]["updated"] == 1
    assert [d["title"] for d in _documents(client, "revisions")] == ["Plan"]


def test_a_name_over_255_bytes_is_stored_under_a_shortened_name(client):
    client.post("/v1/collections", json={"name": "long-names"})
    stem = "minutes-of-the-parish-council-" * 10  # 300 bytes: more than a file system takes in one name
    first = _upload(client, "long-names", stem + "a.txt", b"The first long-named file is about owls.\n")
    second = _upload(client, "long-names", stem + "b.txt", b"The second long-named file is about bats.\n")
    assert first["status"] == second["status"] == "completed", (first, second)
    assert first["filename"] == stem + "a.txt"
    titles = [d["title"] for d in _documents(client, "long-names")]
    assert len(titles) == 2 and all(t and stem.startswith(t) for t in titles)  # a prefix of the original
