"""All of TensorOne's routes, under ``/v2`` (they do not clash with ``/v1``)."""

from __future__ import annotations

from fastapi import APIRouter

from jobyard.api.dialects.tensorone import jobs, runs

router = APIRouter()
for module in (jobs, runs):
    router.include_router(module.router)
