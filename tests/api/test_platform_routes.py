"""Collections, uploads and their jobs, search, health and metrics over httpx."""

from __future__ import annotations

import time

import httpx


def _wait_for_job(client: httpx.Client, job_id: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        job = client.get(f"/v1/jobs/{job_id}").json()
        if job["status"] in ("completed", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.2)


def test_collections_crud(admin):
    created = admin.post("/v1/collections", json={"name": "crud-a", "description": "first"})
    assert created.status_code == 201 and created.json()["documents"] == 0
    assert admin.post("/v1/collections", json={"name": "crud-a"}).status_code == 409
    assert "crud-a" in [c["name"] for c in admin.get("/v1/collections").json()["data"]]
    updated = admin.patch("/v1/collections/crud-a", json={"name": "crud-b", "description": "second"})
    assert updated.json()["name"] == "crud-b" and updated.json()["description"] == "second"
    assert admin.get("/v1/collections/crud-a").status_code == 404
    assert admin.delete("/v1/collections/crud-b").json()["deleted"] is True
    missing = admin.get("/v1/collections/crud-b")
    assert missing.status_code == 404 and missing.json()["error"]["type"] == "not_found_error"
    bad = admin.post("/v1/collections", json={"name": "../etc"})
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "name"


def test_upload_ingests_and_becomes_searchable(admin):
    admin.post("/v1/collections", json={"name": "uploads"})
    text = b"# Lighthouses\n\nThe Quillon lighthouse flashes green every twelve seconds.\n"
    response = admin.post("/v1/collections/uploads/documents", files={"file": ("lighthouse.md", text)})
    assert response.status_code == 202 and response.json()["status"] in ("queued", "running", "completed")
    job = _wait_for_job(admin, response.json()["id"])
    assert job["status"] == "completed" and job["counts"]["added"] == 1
    assert job["ingest"]["status"] == "completed" and job["ingest"]["collection"] == "uploads"
    documents = admin.get("/v1/collections/uploads/documents").json()["data"]
    assert [d["title"] for d in documents] == ["Lighthouses"]
    hits = admin.post(
        "/v1/search", json={"query": "green flashing light", "collections": ["uploads"], "k": 1}
    )
    assert "Quillon" in hits.json()["data"][0]["text"]


def test_upload_limits_and_bad_files(admin):
    too_big = admin.post("/v1/collections/notes/documents", files={"file": ("big.txt", b"x" * 120_000)})
    assert too_big.status_code == 413 and too_big.json()["error"]["type"] == "request_too_large"
    assert admin.post("/v1/collections/nope/documents", files={"file": ("a.txt", b"hi")}).status_code == 404
    binary = admin.post("/v1/collections/notes/documents", files={"file": ("blob.bin", bytes(range(256)))})
    job = _wait_for_job(admin, binary.json()["id"])
    assert job["status"] == "failed" and job["error"]
    assert admin.get("/v1/jobs/doesnotexist").status_code == 404


def test_search_returns_ranked_hits_with_citations(admin):
    response = admin.post(
        "/v1/search", json={"query": "when does the night train leave", "collections": ["notes"]}
    )
    hits = response.json()["data"]
    assert hits[0]["title"] == "Trains" and "23:40" in hits[0]["text"]
    assert {"chunk_id", "document_id", "collection", "location", "score"} <= set(hits[0])
    assert admin.post("/v1/search", json={"query": "x", "collections": ["nope"]}).status_code == 404
    assert admin.post("/v1/search", json={"query": "", "collections": ["notes"]}).status_code == 400
    assert admin.post("/v1/search", json={"query": "x", "collections": ["notes"], "k": 0}).status_code == 400


def test_health_and_metrics(admin, base_url):
    assert httpx.get(f"{base_url}/health").json()["status"] == "ok"  # no key needed
    admin.post(
        "/v1/chat/completions",
        json={
            "model": "smollm2-135m-instruct",
            "max_tokens": 4,
            "messages": [{"role": "user", "content": "Hi"}],
        },
    )
    text = httpx.get(f"{base_url}/metrics").text
    assert 'ember_http_requests_total{method="POST",route="/v1/chat/completions",status="200"}' in text
    assert "ember_http_request_seconds_bucket" in text
    assert "ember_generation_tokens_per_second_count" in text
    generated = [line for line in text.splitlines() if line.startswith("ember_generated_tokens_total")]
    assert float(generated[0].split()[-1]) >= 4
