"""The FastAPI application: one core, one router per dialect.

Adding a dialect is one folder under ``dialects/`` and one line in :data:`ROUTERS`.
"""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Protocol

from fastapi import FastAPI

from jobyard import __version__
from jobyard.api import docs, errors, health, relay, replicas
from jobyard.api.dialects.native import admin, jobs, metrics, outputs, reports, streams, webhooks
from jobyard.api.dialects.native import clusters as native_clusters
from jobyard.api.dialects.native import endpoints as native_endpoints
from jobyard.api.dialects.native import packages as native_packages
from jobyard.api.dialects.native import storage as native_storage
from jobyard.api.dialects.tensorone import routes as tensorone_routes
from jobyard.api.dialects.tensorpool import routes as tensorpool_routes
from jobyard.api.dialects.tensorpool import upload as tensorpool_upload
from jobyard.api.dialects.xplenty import routes as xplenty_routes
from jobyard.api.limits import BodySizeLimit
from jobyard.api.ui import routes as ui
from jobyard.core.services import Services

ROUTERS = [health.router, replicas.router, jobs.router, streams.router, admin.router,
           outputs.router, webhooks.router, reports.router, metrics.router,
           native_storage.router, native_clusters.router,
           tensorpool_routes.router, native_endpoints.router, tensorone_routes.router,
           native_packages.router,
           xplenty_routes.router]  # last: it ends with a catch-all under /{account_id}/api/


class Server(Protocol):
    """What the app serves and starts (``jobyard.runtime.Runtime``)."""

    services: Services

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


def create_app(rt: Server) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await rt.start()
        # Everything built at start-up lives as long as the process: keep it out of the
        # collector's full passes, which otherwise show up as multi-millisecond latency spikes.
        gc.collect()
        gc.freeze()
        try:
            yield
        finally:
            await rt.stop()

    app = FastAPI(
        title="Jobyard",
        version=__version__,
        description="Self-hosted job service for GPU and compute work.",
        lifespan=lifespan,
        docs_url=None,  # api/docs.py serves both pages from assets in the package
        redoc_url=None,
    )
    docs.install(app)
    ui.install(app)
    app.state.services = rt.services
    app.state.metrics_registry = None
    errors.install(app)
    relay.install(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=rt.services.config.max_request_bytes,
                       overrides=tensorpool_upload.BODY_LIMITS)
    app.add_middleware(errors.CrashGuard)  # added last: the outermost
    return app
