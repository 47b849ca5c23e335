"""TensorPool's bodies and error envelopes.

The TensorPool CLI reads only ``message`` (then ``error``, then ``external_message``) from an
error body, so every error carries ``message``; a 422 is FastAPI's ``HTTPValidationError``
(``{"detail": [{"loc", "msg", "type"}]}``) with ``message`` beside it. Routes of this dialect
use :class:`TensorPoolRoute`, so these envelopes apply to them only.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from jobyard.api.dialects.envelope import envelope_route
from jobyard.api.errors import http_status
from jobyard.api.responses import JSON
from jobyard.core.operations import Operation
from jobyard.core.times import iso
from jobyard.errors import JobyardError, ValidationFailed


def accepted(message: str, **ids: Any) -> JSON:
    """A 202 (what the CLI requires of every create/destroy/edit/attach/detach), with the
    ``message`` it prints and the ids it polls (``request_id`` or ``request_ids``)."""
    return JSON({"message": message, **ids}, status_code=202)


def yes_no(flag: bool) -> str:
    return "yes" if flag else "no"


def when(ts: float | None) -> str | None:
    """A time for a table cell: ``2026-11-24 10:12:40 UTC``."""
    return None if ts is None else datetime.fromtimestamp(ts, UTC).strftime(
        "%Y-%m-%d %H:%M:%S UTC")


def request_info(r: Operation) -> dict[str, Any]:
    """The seed's ``RequestInfoResponse``, field for field."""
    return {
        "request_id": r.uid,
        "request_type": str(r.type),
        "status": str(r.status),
        "created_at": iso(r.created_at),
        "object_id": r.object_id,
        "external_message": r.external_message,
    }


def validation_error(detail: list[dict[str, Any]]) -> JSON:
    first = detail[0] if detail else {}
    loc = ".".join(str(p) for p in first.get("loc", ()))
    message = f"invalid request: {loc}: {first.get('msg', 'invalid')}" if first else "invalid"
    return JSON({"detail": detail, "message": message}, status_code=422)


def error_response(exc: JobyardError) -> JSON:
    if isinstance(exc, ValidationFailed):
        return validation_error([{"loc": exc.details.get("loc", ["body"]), "msg": exc.message,
                                  "type": exc.details.get("type", "value_error")}])
    return JSON({"message": exc.message, "error": exc.code}, status_code=http_status(exc))


def _crash() -> JSON:
    return JSON({"message": "internal error on the server; see its log",
                 "error": "INTERNAL_ERROR"}, status_code=500)


_DETAIL = {"type": "array", "items": {
    "type": "object", "required": ["loc", "msg", "type"],
    "properties": {"loc": {"type": "array", "items": {"anyOf": [{"type": "string"},
                                                                  {"type": "integer"}]}},
                   "msg": {"type": "string"}, "type": {"type": "string"}}}}
# What every route documents of its errors (``message`` always; ``detail`` on a 422).
ERROR_SCHEMA = {"type": "object", "required": ["message"],
                "properties": {"message": {"type": "string"}, "error": {"type": "string"},
                               "detail": _DETAIL}}
ERRORS: dict[int | str, dict[str, Any]] = {"4XX": {
    "description": "An error: `message` is what the CLI prints",
    "content": {"application/json": {"schema": ERROR_SCHEMA}}}}

# The CLI prints only ``message``: every error answer carries one.
TensorPoolRoute = envelope_route("TensorPool", validation_error, error_response, _crash,
                                 responses=ERRORS)
