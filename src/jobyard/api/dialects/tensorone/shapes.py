"""TensorOne's error envelope, and the small translation tables of the dialect.

Every error is ``{"error": CODE, "message": ..., "details": {...}}`` (the job-status page's
404/403/429 bodies); routes of this dialect use :class:`TensorOneRoute`, so the envelope
applies to them only. A request that does not validate is 400 ``INVALID_REQUEST`` with the
problems in ``details.errors``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from fastapi import Request, Response

from jobyard.api.dialects.envelope import envelope_route
from jobyard.api.errors import http_status
from jobyard.api.responses import JSON
from jobyard.errors import (
    Forbidden,
    JobNotFound,
    JobyardError,
    ValidationFailed,
)

# errors ------------------------------------------------------------------------------------------
# A request that does not validate: TensorOne's code and status (FastAPI's would be 422).
INVALID_REQUEST, INVALID_STATUS = "INVALID_REQUEST", 400


def job_not_found(job_id: str, retention_days: float | None) -> JobNotFound:
    """The page's 404: an unknown id and one deleted by retention read alike."""
    reasons = ["Job ID is incorrect", "Job was deleted after completion"]
    if retention_days is not None:
        reasons.append(f"Job expired (older than {retention_days:g} days)")
    return JobNotFound(f"Job {job_id} does not exist or has expired",
                       {"jobId": job_id, "possibleReasons": reasons})


def access_denied(job_id: str) -> Forbidden:
    """The page's 403. Keys hold every permission inside their own org and none outside it,
    so on another org's job the caller's permissions are none."""
    return Forbidden("You don't have permission to view this job",
                     {"jobId": job_id, "requiredPermission": "jobs:read",
                      "userPermissions": []})


def envelope(exc: JobyardError) -> JSON:
    if isinstance(exc, ValidationFailed):
        return validation_envelope([{"loc": exc.details.get("loc", ["body"]),
                                     "msg": exc.message,
                                     "type": exc.details.get("type", "value_error")}])
    return JSON({"error": exc.code, "message": exc.message, "details": camel_keys(exc.details)},
                status_code=http_status(exc))


def validation_envelope(errors: list[dict[str, Any]]) -> JSON:
    first = errors[0] if errors else {}
    where = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query"))
    message = (f"invalid request: {where or 'body'}: {first.get('msg', 'invalid')}" if first
               else "invalid")
    clean = [{"loc": e.get("loc"), "msg": e.get("msg"), "type": e.get("type")} for e in errors]
    return JSON({"error": INVALID_REQUEST, "message": message, "details": {"errors": clean}},
                status_code=INVALID_STATUS)


def _crash() -> JSON:
    return JSON({"error": "INTERNAL_ERROR", "message": "internal error on the server; see its log",
                 "details": {}}, status_code=500)


def _with_limit_headers(request: Request, response: Response) -> Response:
    """The status-check limit (``X-RateLimit-*``, ``Retry-After``) on every answer that counted
    one, errors included (a 404 still says how many checks are left)."""
    for name, value in getattr(request.state, "tensorone_headers", {}).items():
        response.headers.setdefault(name, value)
    return response


# What every route documents of its errors: the page's envelope (a 400 for a bad request).
ERROR_SCHEMA = {"type": "object", "required": ["error", "message", "details"],
                "properties": {"error": {"type": "string"}, "message": {"type": "string"},
                               "details": {"type": "object"}}}
ERRORS: dict[int | str, dict[str, Any]] = {"4XX": {
    "description": "An error: `{error, message, details}` (400 `INVALID_REQUEST` for a bad "
                   "request, its problems in `details.errors`)",
    "content": {"application/json": {"schema": ERROR_SCHEMA}}}}

TensorOneRoute = envelope_route("TensorOne", validation_envelope, envelope, _crash,
                                finish=_with_limit_headers, responses=ERRORS)


# priorities --------------------------------------------------------------------------------------
# TensorOne's priority names and the core's integer priority (higher runs first): a name is
# stored as its number; a number is shown as the highest name it reaches.
PRIORITIES: tuple[tuple[str, int], ...] = (
    ("low", -10), ("normal", 0), ("high", 10), ("urgent", 20))
PRIORITY_NAMES = tuple(name for name, _ in PRIORITIES)


def priority_value(name: str) -> int:
    return dict(PRIORITIES)[name]


def priority_name(value: int) -> str:
    found = PRIORITIES[0][0]
    for name, floor in PRIORITIES:
        if value >= floor:
            found = name
    return found


# tags --------------------------------------------------------------------------------------------
# TensorOne's tags are an object of strings; the core's are strings. {"k": "v"} is the tag
# "k:v"; a core tag without ":" shows as {"tag": ""}.
MAX_TAG = 100


def tags_to_core(tags: dict[str, str]) -> tuple[str, ...]:
    out = []
    for key, value in tags.items():
        if not key or ":" in key:
            raise ValidationFailed("tag names must be non-empty and without ':'",
                                   {"loc": ["body", "tags", key], "type": "value_error"})
        tag = f"{key}:{value}"
        if len(tag) > MAX_TAG:
            raise ValidationFailed(f"a tag's name and value together must be at most "
                                   f"{MAX_TAG - 1} characters",
                                   {"loc": ["body", "tags", key], "type": "value_error"})
        out.append(tag)
    return tuple(out)


def tags_from_core(tags: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for tag in tags:
        key, _, value = tag.partition(":")
        out[key] = value
    return out


# values ------------------------------------------------------------------------------------------
def size(n: float | None) -> str | None:
    """Bytes as the page writes sizes: ``12.5GB``, ``512MB`` (binary multiples)."""
    if n is None:
        return None
    for unit, scale in (("TB", 1024**4), ("GB", 1024**3), ("MB", 1024**2), ("KB", 1024)):
        if n >= scale:
            return f"{n / scale:.1f}".removesuffix(".0") + unit
    return f"{int(n)}B"


_CAMEL = re.compile(r"_([a-z0-9])")


def camel(key: str) -> str:
    """``exit_code`` -> ``exitCode``; a unit suffix is spelled out (``time_limit_s`` ->
    ``timeLimitSeconds``)."""
    if key.endswith("_s"):
        key = key[:-2] + "_seconds"
    return _CAMEL.sub(lambda m: m.group(1).upper(), key)


def camel_keys(data: dict[str, Any]) -> dict[str, Any]:
    """Top-level snake_case keys as camelCase (the page's style)."""
    return {camel(k): v for k, v in data.items()}


def seconds(value: float | None) -> float | None:
    return None if value is None else round(max(0.0, value), 3)


def include_set(values: Iterable[str] | None, where: str = "query") -> frozenset[str]:
    """``include`` as given: repeated (``include=logs&include=metrics``), comma-separated
    (``include=logs,metrics``) or both; unknown names are refused."""
    wanted = {part.strip() for value in values or () for part in value.split(",")}
    wanted.discard("")
    unknown = wanted - INCLUDES
    if unknown:
        raise ValidationFailed(
            f"unknown include {', '.join(sorted(unknown))}; use {', '.join(sorted(INCLUDES))}",
            {"loc": [where, "include"], "type": "value_error"})
    return frozenset(wanted)


INCLUDES = frozenset({"logs", "metrics", "resources"})
