"""Errors on the wire: the one table of HTTP statuses, and the native API's envelope.

Domain errors (``jobyard.errors``) carry a code, never a status; :data:`STATUS` maps each code
to the status every dialect answers with (a dialect that must differ passes its own table to
:func:`http_status`). Vendor dialects render their own envelopes (``dialects/envelope.py``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from jobyard.errors import JobyardError, ValidationFailed

log = logging.getLogger("jobyard.api")

#        code                     status
STATUS: dict[str, int] = {
    "INVALID_INPUT":              422,
    "BAD_REQUEST":                400,
    "UNAUTHORIZED":               401,
    "ACCESS_DENIED":              403,
    "NOT_FOUND":                  404,
    "CONFLICT":                   409,
    "QUOTA_EXCEEDED":             409,
    "UNSCHEDULABLE":              422,
    "RATE_LIMIT_EXCEEDED":        429,
    "NOT_SUPPORTED":              501,
    "CONNECTION_FAILED":          503,
    "INTERNAL_ERROR":             500,
}


def http_status(exc: JobyardError, table: Mapping[str, int] = STATUS) -> int:
    """The status for ``exc``: its own code's, else its nearest base class's (a
    ``JOB_NOT_FOUND`` is a 404 because it is a ``NOT_FOUND``)."""
    for cls in type(exc).__mro__:
        status = table.get(getattr(cls, "code", ""))
        if status is not None:
            return status
    return 500


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
    return JSONResponse({"error": exc.to_dict()}, status_code=http_status(exc),
                        headers=headers)


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
