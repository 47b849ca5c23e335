"""All of Integrate.io's routes, under ``/{account_id}/api/`` (the catch-all 404 last)."""

from __future__ import annotations

from fastapi import APIRouter

from jobyard.api.dialects.xplenty import account, clusters, jobs

router = APIRouter()
for module in (jobs, clusters, account):  # account ends with the catch-all: keep it last
    router.include_router(module.router)
