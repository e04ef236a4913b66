"""Ember's own routes: collections, document uploads and their jobs, search, conversations, health."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, Depends, File, Request, UploadFile
from fastapi import Path as PathParam
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from ember.platform.api.auth import require
from ember.platform.api.cancellation import until_done_or_gone
from ember.platform.api.errors import ApiError
from ember.platform.api.schemas import CollectionCreate, CollectionUpdate, SearchRequest
from ember.platform.api.serialize import to_json
from ember.platform.types import CollectionSummary

router = APIRouter()
READ, WRITE = Depends(require("read")), Depends(require("write"))
RowId = Annotated[int, PathParam(ge=1, le=2**63 - 1)]  # what SQL integer keys can hold


def _collection(summary: CollectionSummary) -> dict:
    return {"object": "collection", **to_json(summary)}


@router.get("/health")
def health(request: Request) -> dict:
    state = request.app.state
    return {
        "status": "ok",
        "model": Path(state.service.settings.llm_model).name,
        "queue": state.service.llm_queue().waiting,
    }


@router.get("/metrics")
def metrics(request: Request) -> Response:
    state = request.app.state
    state.metrics.observe_llm_queue(state.service.llm_queue())
    return Response(state.metrics.render(), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.get("/v1/collections", dependencies=[READ])
def list_collections(request: Request) -> dict:
    return {"object": "list", "data": [_collection(c) for c in request.app.state.service.list_collections()]}


@router.post("/v1/collections", dependencies=[WRITE], status_code=201)
def create_collection(body: CollectionCreate, request: Request) -> dict:
    return _collection(request.app.state.service.create_collection(body.name, body.description))


@router.get("/v1/collections/{name}", dependencies=[READ])
def get_collection(name: str, request: Request) -> dict:
    return _collection(request.app.state.service.get_collection(name))


@router.patch("/v1/collections/{name}", dependencies=[WRITE])
def update_collection(name: str, body: CollectionUpdate, request: Request) -> dict:
    return _collection(request.app.state.service.update_collection(name, body.description, body.name))


@router.delete("/v1/collections/{name}", dependencies=[WRITE])
def delete_collection(name: str, request: Request) -> dict:
    request.app.state.service.delete_collection(name)
    return {"id": name, "object": "collection", "deleted": True}


@router.get("/v1/collections/{name}/documents", dependencies=[READ])
def list_documents(name: str, request: Request) -> dict:
    rows = request.app.state.service.list_documents(name)
    return {"object": "list", "data": [{"object": "document", **to_json(d)} for d in rows]}


@router.post("/v1/collections/{name}/documents", dependencies=[WRITE], status_code=202)
async def upload_document(name: str, request: Request, file: UploadFile = File(...)) -> dict:
    """Store one file and start ingesting it; poll GET /v1/jobs/{id} for the outcome."""
    state = request.app.state
    state.service.collection_id(name)
    content = await file.read()
    if not content:
        raise ApiError(400, "the uploaded file is empty", "file")
    job = await run_in_threadpool(state.uploads.submit, name, file.filename or "upload.txt", content)
    return job.as_dict()


@router.get("/v1/jobs/{job_id}", dependencies=[READ])
def job_status(job_id: str, request: Request) -> dict:
    state = request.app.state
    job = state.uploads.get(job_id)
    if job is None:
        raise ApiError(404, f"ingest job '{job_id}' does not exist", "job_id")
    body = job.as_dict()
    if job.ingest_job_id is not None:
        body["ingest"] = to_json(state.service.get_ingest_job(job.ingest_job_id))
    return body


@router.post("/v1/search", dependencies=[READ])
async def search(body: SearchRequest, request: Request) -> dict:
    state = request.app.state
    result = await until_done_or_gone(
        request,
        run_in_threadpool(
            state.service.search, body.query, body.collections, body.k, body.mode, body.filters
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
def list_conversations(request: Request, collection: str | None = None) -> dict:
    rows = request.app.state.service.list_conversations(collection)
    return {"object": "list", "data": [{"object": "conversation", **to_json(c)} for c in rows]}


@router.get("/v1/conversations/{conversation_id}", dependencies=[READ])
def get_conversation(conversation_id: RowId, request: Request) -> dict:
    conversation = request.app.state.service.get_conversation(conversation_id)
    return {"object": "conversation", **to_json(conversation)}


@router.delete("/v1/conversations/{conversation_id}", dependencies=[WRITE])
def delete_conversation(conversation_id: RowId, request: Request) -> dict:
    request.app.state.service.delete_conversation(conversation_id)
    return {"id": conversation_id, "object": "conversation", "deleted": True}
