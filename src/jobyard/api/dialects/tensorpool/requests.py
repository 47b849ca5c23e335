"""TensorPool's async requests (bearer auth with Jobyard API keys).

``GET /request/info/{request_id}``: the seed's ``RequestInfoResponse``; ``Retry-After``
(integer seconds) only while the request is PENDING, PROCESSING or RETRYING. A request of
another org is answered 404, like one that does not exist.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Path, Request

from jobyard.api.auth import principal
from jobyard.api.deps import read, services
from jobyard.api.dialects.tensorpool.shapes import TensorPoolRoute, request_info
from jobyard.api.responses import JSON
from jobyard.core.models import Principal

router = APIRouter(tags=["tensorpool"], route_class=TensorPoolRoute)


@router.get("/request/info/{request_id}", summary="Get request info (TensorPool)")
async def get_request_info(
    request: Request,
    request_id: str = Path(max_length=100, pattern=r"^[A-Za-z0-9_-]+$"),
    who: Principal = Depends(principal),
) -> JSON:
    svc = services(request)
    req = await read(svc, svc.operations.get, who, request_id)
    after = svc.operations.retry_after(req)
    return JSON(request_info(req), headers={"Retry-After": str(after)} if after else None)
