"""Ember's own routes: collections, document uploads and their jobs, search, conversations, health."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Query, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ember.platform.api.auth import require
from ember.platform.api.cancellation import until_done_or_gone
from ember.platform.api.errors import ApiError
from ember.platform.api.schemas import CollectionCreate, CollectionUpdate, SearchRequest
from ember.platform.api.serialize import to_json
from ember.platform.api.worker_threads import on_one_core
from ember.platform.types import CollectionSummary, UploadJobStatus

router = APIRouter()
READ, WRITE = Depends(require("read")), Depends(require("write"))
RowId = Annotated[  # what SQL integer keys can hold
    int, PathParam(ge=1, le=2**63 - 1, description="The conversation's id.")
]
CollectionName = Annotated[str, PathParam(description="The collection's name.")]


def _collection(summary: CollectionSummary) -> dict:
    return {"object": "collection", **to_json(summary)}


@router.get("/health")
def health(request: Request) -> dict:
    """Liveness, without a key: the served model's name and how many generations wait in its queue."""
    state = request.app.state
    return {
        "status": "ok",
        "model": Path(state.service.settings.llm_model).name,
        "queue": state.service.llm_queue().waiting,
    }


@router.get("/metrics")
def metrics(request: Request) -> Response:
    """Prometheus metrics, without a key: requests, latencies, tokens, tokens per second, the model queue."""
    state = request.app.state
    state.metrics.observe_llm_queue(state.service.llm_queue())
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/collections", dependencies=[READ])
def list_collections(request: Request) -> dict:
    """Every collection with its document, chunk and token counts and its chunking settings."""
    return {"object": "list", "data": [_collection(c) for c in request.app.state.service.list_collections()]}


@router.post("/v1/collections", dependencies=[WRITE], status_code=201)
def create_collection(body: CollectionCreate, request: Request) -> dict:
    """Create an empty collection (documents are added by upload, or by `ember ingest`); 409 if it exists."""
    return _collection(request.app.state.service.create_collection(body.name, body.description))


@router.get("/v1/collections/{name}", dependencies=[READ])
def get_collection(name: CollectionName, request: Request) -> dict:
    """One collection and its counts."""
    return _collection(request.app.state.service.get_collection(name))


@router.patch("/v1/collections/{name}", dependencies=[WRITE])
def update_collection(name: CollectionName, body: CollectionUpdate, request: Request) -> dict:
    """Rename a collection or change its description; fields left out keep their value."""
    return _collection(request.app.state.service.update_collection(name, body.description, body.name))


@router.delete("/v1/collections/{name}", dependencies=[WRITE])
def delete_collection(name: CollectionName, request: Request) -> dict:
    """Delete a collection with its documents, chunks and search indexes."""
    request.app.state.service.delete_collection(name)
    return {"id": name, "object": "collection", "deleted": True}


@router.get("/v1/collections/{name}/documents", dependencies=[READ])
def list_documents(name: CollectionName, request: Request) -> dict:
    """The collection's documents: title, source, type, size, chunk count and status."""
    rows = request.app.state.service.list_documents(name)
    return {"object": "list", "data": [{"object": "document", **to_json(d)} for d in rows]}


def _upload_job(job: UploadJobStatus) -> dict:
    return {**to_json(job), "id": str(job.id), "object": "ingest.job"}


@router.post("/v1/collections/{name}/documents", dependencies=[WRITE], status_code=202)
async def upload_document(
    name: CollectionName,
    request: Request,
    file: UploadFile = File(..., description="The document: any type `ember ingest` reads."),
) -> dict:
    """Store one file and start ingesting it; poll GET /v1/jobs/{id} for the outcome.

    Files keep their names: an upload under a new name is a new document, one under a name already
    uploaded to the collection updates that document."""
    state = request.app.state
    state.service.collection_id(name)
    content = await file.read()
    if not content:
        raise ApiError(400, "the uploaded file is empty", "file")
    job = await run_in_threadpool(state.uploads.submit, name, file.filename or "upload.txt", content)
    return _upload_job(job)


@router.get("/v1/jobs/{job_id}", dependencies=[READ])
def job_status(
    job_id: Annotated[str, PathParam(description="The id an upload returned.")], request: Request
) -> dict:
    """An upload's ingest job: queued, running, completed or failed (with the reason), and its counts."""
    state = request.app.state
    if not (job_id.isascii() and job_id.isdigit() and 0 < int(job_id) < 2**63):
        raise ApiError(404, f"ingest job '{job_id}' does not exist", "job_id")
    job = state.service.get_upload_job(int(job_id))
    body = _upload_job(job)
    if job.ingest_job_id is not None:
        body["ingest"] = to_json(state.service.get_ingest_job(job.ingest_job_id))
    return body


@router.post("/v1/search", dependencies=[READ])
async def search(body: SearchRequest, request: Request) -> dict:
    """Ranked chunks from one or more collections, each with its document, location and score."""
    state = request.app.state
    result = await until_done_or_gone(
        request,
        run_in_threadpool(
            on_one_core, state.service.search, body.query, body.collections, body.k, body.mode, body.filters
        ),
        state.settings.api_timeout_s,
    )
    hits = [
        {
            "chunk_id": h.chunk_id,
            "document_id": h.document_id,
            "collection": h.collection,
            "title": h.title,
            "location": h.location,
            "text": h.text,
            "score": h.score,
        }
        for h in result.hits
    ]
    return {"object": "search.result", "data": hits, "notes": result.notes, "timings_ms": result.timings_ms}


@router.get("/v1/conversations", dependencies=[READ])
def list_conversations(
    request: Request,
    collection: Annotated[str | None, Query(description="Only this collection's conversations.")] = None,
) -> dict:
    """Stored conversations, the most recently active first, with their message counts."""
    rows = request.app.state.service.list_conversations(collection)
    return {"object": "list", "data": [{"object": "conversation", **to_json(c)} for c in rows]}


@router.get("/v1/conversations/{conversation_id}", dependencies=[READ])
def get_conversation(conversation_id: RowId, request: Request) -> dict:
    """One conversation with its messages, their citations and agent steps."""
    conversation = request.app.state.service.get_conversation(conversation_id)
    return {"object": "conversation", **to_json(conversation)}


@router.delete("/v1/conversations/{conversation_id}", dependencies=[WRITE])
def delete_conversation(conversation_id: RowId, request: Request) -> dict:
    """Delete a conversation and its messages."""
    request.app.state.service.delete_conversation(conversation_id)
    return {"id": conversation_id, "object": "conversation", "deleted": True}
