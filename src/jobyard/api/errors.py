"""Errors on the wire: the one table of HTTP statuses, the native API's envelope, and the
guard that turns any unexpected exception into an answer.

Domain errors (``jobyard.errors``) carry a code, never a status; :data:`STATUS` maps each code
to the status every dialect answers with (a dialect that must differ passes its own table to
:func:`http_status`). Vendor dialects render their own envelopes (``dialects/envelope.py``).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from jobyard.errors import JobyardError, ValidationFailed, storage_fault

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
    "SERVICE_UNAVAILABLE":        503,
    "STORAGE_FULL":               507,
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
    return JSONResponse({"error": exc.to_dict()}, status_code=http_status(exc),
                        headers=retry_headers(exc))


def retry_headers(exc: JobyardError) -> dict[str, str]:
    """``Retry-After`` (whole seconds) when ``exc`` says when to try again."""
    after = exc.retry_after
    return {} if after is None else {"Retry-After": str(max(1, math.ceil(after)))}


def unexpected(exc: Exception, where: str) -> JobyardError | None:
    """The domain error an exception no route meant to raise stands for (a full disk is a
    :class:`~jobyard.errors.StorageFull`), or None once it is logged as a crash: the
    traceback goes to the server log, never into the answer."""
    fault = storage_fault(exc)
    if fault is not None:
        log.warning("%s: %s", where, exc)
        return fault
    log.error("%s failed", where, exc_info=exc)
    return None


class CrashGuard:
    """Outermost middleware: an exception that escaped every handler is answered here and
    goes no further. (Starlette's own last resort answers and then re-raises, and the server
    then drops the keep-alive connection: the client's next request would be reset too.)"""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watched_send(message: dict[str, Any]) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watched_send)
        except Exception as exc:
            where = f"{scope.get('method')} {scope.get('path')}"
            error = exc if isinstance(exc, JobyardError) else unexpected(exc, where)
            if started:  # the answer is cut short: the server closes this connection
                return
            error = error or JobyardError("internal server error; see the server log")
            await error_response(error)(scope, receive, send)


def install(app: FastAPI) -> None:
    """Render domain errors on native routes; add :class:`CrashGuard` last (outermost)."""

    async def handle(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, JobyardError)
        return error_response(exc)

    app.add_exception_handler(JobyardError, handle)
