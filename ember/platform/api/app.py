"""The FastAPI application: OpenAI-compatible routes and Ember's platform routes over one facade.

uvicorn --factory ember.platform.api.app:app_from_env     (what `ember serve` runs)
"""

from __future__ import annotations

import os
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from ember.platform.api.errors import install_error_handlers
from ember.platform.api.gate import Gate
from ember.platform.api.metrics import ApiMetrics
from ember.platform.api.openai_routes import router as openai_router
from ember.platform.api.platform_routes import router as platform_router
from ember.platform.api.uploads import UploadJobs
from ember.platform.api.worker_threads import WorkerThreads
from ember.platform.service import EmberService

AUTH_ENV = "EMBER_API_AUTH"  # set by `ember serve`: "1" or "0"


def create_app(service: EmberService, auth_required: bool = True, owns_service: bool = False) -> FastAPI:
    """The app over ``service``; with ``owns_service`` it stops the service's model when the app stops."""
    settings = service.settings
    service.db  # noqa: B018 - open (and migrate) the database now, not in the first requests' threads

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        app.state.workers.close()
        app.state.uploads.close()
        if owns_service:
            service.close()

    app = FastAPI(
        title="Ember API",
        version="0.1.0",
        description="OpenAI-compatible chat, embeddings and models, plus Ember's collections and search.",
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.settings = settings
    app.state.workers = WorkerThreads()
    app.state.metrics = ApiMetrics()
    app.state.uploads = UploadJobs(service)
    app.state.started_at = time.time()
    install_error_handlers(app)
    app.include_router(openai_router)
    app.include_router(platform_router)
    app.add_middleware(
        Gate,
        verify_key=service.verify_key,
        metrics=app.state.metrics,
        auth_required=auth_required,
        max_body_bytes=int(settings.api_max_request_mb * 2**20),
        max_upload_bytes=int(settings.api_max_upload_mb * 2**20),
        concurrency_per_key=settings.api_concurrency_per_key,
    )
    return app


def app_from_env() -> FastAPI:
    """The app for a uvicorn worker: settings from the environment, auth as `ember serve` decided."""
    auth_required = os.environ.get(AUTH_ENV, "1") != "0"
    return create_app(EmberService(), auth_required=auth_required, owns_service=True)
