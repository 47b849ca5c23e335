"""The machinery every resource module shares: a :class:`Call` (one request and how to parse
its answer), the error an answer becomes, and small helpers for building calls.

Every request is built and its answer parsed once, as a :class:`Call`, by the ``...Calls``
class of its resource module (:class:`~jobyard.sdk.jobs.JobCalls`,
:class:`~jobyard.sdk.volumes.VolumeCalls`, ...); :class:`~jobyard.sdk.client.Client` and
:class:`~jobyard.sdk.client.AsyncClient` only run calls over their own httpx client. An error
answer becomes the :mod:`jobyard.errors` exception it names (:func:`error_from_response`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import quote

import httpx

from jobyard import errors
from jobyard.errors import JobyardError

__all__ = ["Call", "Calls", "error_from_response", "raise_for_response"]

T = TypeVar("T")


# --------------------------------------------------------------------------- errors

_BY_STATUS: dict[int, type[JobyardError]] = {
    400: errors.ValidationFailed,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    422: errors.ValidationFailed,
    429: errors.RateLimited,
    503: errors.Unavailable,
    507: errors.StorageFull,
}


def _validation_message(detail: list[Any]) -> str:
    parts = []
    for item in detail[:3]:
        item = item if isinstance(item, dict) else {"msg": str(item)}
        loc = [str(p) for p in item.get("loc", []) if p not in ("body", "query", "path")]
        parts.append(f"{'.'.join(loc) or 'request'}: {item.get('msg', 'invalid')}")
    if len(detail) > 3:
        parts.append(f"and {len(detail) - 3} more")
    return "invalid request: " + "; ".join(parts)


def error_from_response(response: httpx.Response) -> JobyardError:
    """The :mod:`jobyard.errors` exception for an error answer: by the envelope's code,
    else by FastAPI's validation shape, else by HTTP status."""
    try:
        body = response.json()
    except ValueError:
        body = None
    cls = _BY_STATUS.get(response.status_code, JobyardError)
    code: str | None = None
    message: str | None = None
    details: dict[str, Any] = {}
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        err = body["error"]
        code = err.get("code")
        message = err.get("message")
        details = dict(err.get("details") or {})
        cls = errors.BY_CODE.get(code or "", cls)
    elif isinstance(body, dict) and isinstance(body.get("detail"), list):
        cls = errors.ValidationFailed
        details = {"detail": body["detail"]}
        message = _validation_message(body["detail"])
    elif isinstance(body, dict) and isinstance(body.get("detail"), str):
        message = body["detail"]
    if not message:
        text = response.text.strip()[:200]
        message = f"HTTP {response.status_code} {response.reason_phrase}" + (
            f": {text}" if text else ""
        )
    if "retry-after" in response.headers:
        try:
            details.setdefault("retry_after", float(response.headers["retry-after"]))
        except ValueError:
            details.setdefault("retry_after", response.headers["retry-after"])
    # A code this SDK does not know (e.g. REQUEST_TOO_LARGE) keeps its name on the nearest class.
    return cls(message, details, code=code if code and code != cls.code else None,
               status=response.status_code)


def raise_for_response(response: httpx.Response) -> None:
    if not response.is_success:
        raise error_from_response(response)


# --------------------------------------------------------------------------- calls


@dataclass(frozen=True, slots=True)
class Call(Generic[T]):
    """One request and how to parse its (successful) answer."""

    method: str
    path: str
    parse: Callable[[httpx.Response], T]
    params: dict[str, Any] | None = None
    json: Any = None
    headers: dict[str, str] | None = None


def segment(value: str | int) -> str:
    """``value`` quoted as one path segment (``/`` included)."""
    return quote(str(value), safe="")


def clean(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` without the keys whose value is None (options left out)."""
    return {k: v for k, v in values.items() if v is not None}


def listing(response: httpx.Response) -> list[dict[str, Any]]:
    """A listing's items: ``{"items": [...]}`` or a bare list."""
    body = response.json()
    items: list[dict[str, Any]] = body["items"] if isinstance(body, dict) else body
    return items


class Calls:
    """The calls that belong to no resource. Each resource module has its own ``...Calls``
    (``JobCalls``, ``UserCalls``, ``VolumeCalls``, ``OperationCalls``, ...)."""

    @staticmethod
    def health() -> Call[dict[str, Any]]:
        return Call("GET", "/healthz", lambda r: r.json())
