"""How the native API renders errors. Vendor dialects install their own envelopes."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from jobyard.errors import JobyardError, ValidationFailed

log = logging.getLogger("jobyard.api")


def error_response(exc: JobyardError) -> JSONResponse:
    if isinstance(exc, ValidationFailed):
        # FastAPI's HTTPValidationError shape, so clients parse one 422 format.
        item = {
            "loc": exc.details.get("loc", ["body"]),
            "msg": exc.message,
            "type": exc.details.get("type", "value_error"),
        }
        return JSONResponse({"detail": [item]}, status_code=422)
    headers = {}
    if "retry_after" in exc.details:
        headers["Retry-After"] = str(int(exc.details["retry_after"]))
    return JSONResponse({"error": exc.to_dict()}, status_code=exc.status, headers=headers)


def install(app: FastAPI) -> None:
    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, JobyardError)
        return error_response(exc)

    async def crash(request: Request, exc: Exception) -> JSONResponse:
        # The traceback goes to the server log, never into the answer.
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return error_response(JobyardError("internal server error; see the server log"))

    app.add_exception_handler(JobyardError, handle)
    app.add_exception_handler(Exception, crash)
