"""The FastAPI application: OpenAI-compatible routes and Ember's platform routes over one facade.

uvicorn --factory ember.platform.api.app:app_from_env     (what `ember serve` runs)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from ember.platform.api.errors import install_error_handlers
from ember.platform.api.gate import Gate
from ember.platform.api.metrics import ApiMetrics
from ember.platform.api.openai_routes import router as openai_router
from ember.platform.api.platform_routes import router as platform_router
from ember.platform.api.uploads import UploadJobs
from ember.platform.api.worker_threads import WorkerThreads
from ember.platform.service import EmberService

AUTH_ENV = "EMBER_API_AUTH"  # set by `ember serve`: "1" or "0"
BIND_HOST_ENV = "EMBER_API_BIND_HOST"  # set by `ember serve`: the --host it binds


log = logging.getLogger("uvicorn.error")  # uvicorn's own logger: these lines appear with the server's


def _warm_up(service: EmberService) -> None:
    started = time.perf_counter()
    try:
        service.warm_up(log.info)
    except Exception as exc:  # noqa: BLE001 - the server keeps running; requests report the error
        log.warning("the model did not load: %s", exc)
        return
    log.info("model ready in %.1f s", time.perf_counter() - started)


def create_app(
    service: EmberService, auth_required: bool = True, owns_service: bool = False, bind_host: str = ""
) -> FastAPI:
    """The app over ``service``; with ``owns_service`` it stops the service's model when the app stops.
    ``bind_host`` is a Host name it answers besides loopback, the local address and api_allowed_hosts."""
    settings = service.settings
    service.db  # noqa: B018 - open (and migrate) the database now, not in the first requests' threads

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # The model loads beside the running server: /health answers at once, and the first
        # request waits only for what is left of the load.
        warm_up = threading.Thread(target=_warm_up, args=(service,), name="ember-warm-up", daemon=True)
        warm_up.start()
        yield
        app.state.workers.close()
        app.state.uploads.close()
        if owns_service:
            warm_up.join()  # so close() stops a model that was still loading
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
        allowed_hosts=[*settings.api_allowed_hosts, bind_host],
        allowed_origins=settings.api_allowed_origins,
    )
    if settings.api_allowed_origins:  # outside the gate: it answers preflights, which carry no key
        origins = settings.api_allowed_origins
        app.add_middleware(CORSMiddleware, allow_origins=origins, allow_methods=["*"], allow_headers=["*"])
    return app


def app_from_env() -> FastAPI:
    """The app for a uvicorn worker: settings from the environment, auth as `ember serve` decided."""
    auth_required = os.environ.get(AUTH_ENV, "1") != "0"
    bind_host = os.environ.get(BIND_HOST_ENV, "")
    return create_app(EmberService(), auth_required=auth_required, owns_service=True, bind_host=bind_host)
