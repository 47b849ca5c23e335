"""All of TensorPool's routes, mounted at the root (they do not clash with ``/v1``)."""

from __future__ import annotations

from fastapi import APIRouter

from jobyard.api.dialects.tensorpool import (
    account,
    clusters,
    jobs,
    listen,
    push,
    requests,
    storage,
    upload,
)

router = APIRouter()
for module in (requests, jobs, push, listen, upload, account, clusters, storage):
    router.include_router(module.router)
