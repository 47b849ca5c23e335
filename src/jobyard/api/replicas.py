"""What replicas ask of each other, beside the public APIs (not in the OpenAPI documents).

``GET /internal/workspaces/{token}``: a workspace this replica made (a pushed project, a run's
input), packed for the leader that is about to run its job on another machine. The token is a
link signed with the secret every replica of the database shares, naming the workspace.
"""

from __future__ import annotations

import os

from fastapi import APIRouter, Request
from starlette.background import BackgroundTask
from starlette.responses import FileResponse

from jobyard.api.deps import services
from jobyard.api.validation import StrictRoute
from jobyard.core.files import WORKSPACE_LINK
from jobyard.errors import Forbidden

router = APIRouter(route_class=StrictRoute, include_in_schema=False)


@router.get("/internal/workspaces/{token}")
async def workspace(request: Request, token: str) -> FileResponse:
    svc = services(request)
    parts = svc.signer.read_link(WORKSPACE_LINK, token)
    if parts is None or len(parts) != 1:
        raise Forbidden("this workspace link is not valid or has expired")
    path = await svc.files.workspace_archive(parts[0])
    return FileResponse(path, media_type="application/gzip",
                        background=BackgroundTask(os.unlink, path))
