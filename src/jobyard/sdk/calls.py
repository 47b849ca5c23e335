"""Request building and answer parsing, shared by :class:`~jobyard.sdk.client.Client` and
:class:`~jobyard.sdk.client.AsyncClient`.

Every request is built and its answer parsed once, as a :class:`Call` (see :class:`Calls`);
the two clients only run calls over their own httpx client. An error answer becomes the
:mod:`jobyard.errors` exception it names (:func:`error_from_response`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypedDict, TypeVar, Unpack
from urllib.parse import quote

import httpx

from jobyard import errors
from jobyard.errors import JobyardError
from jobyard.sdk.models import ApiKey, Job, LogPage, Me, Org, Page, User

__all__ = ["Call", "Calls", "JobRef", "SubmitOptions", "error_from_response",
           "raise_for_response"]

T = TypeVar("T")

JobRef = str | int | Job
"""A job: its ``job_...`` id, its number, or a :class:`Job`."""


class SubmitOptions(TypedDict, total=False):
    name: str | None
    env: dict[str, str] | None
    workdir: str | None
    gpus: int
    cpus: float
    memory_mb: int
    instance_type: str | None
    priority: int
    time_limit_s: float | None
    retry: int | dict[str, Any] | None
    tags: list[str] | None
    webhook: str | dict[str, Any] | None
    idempotency_key: str | None
    cluster_id: str | None
    outputs: list[str] | None  # files to keep, relative to workdir ("ckpt/", "*.pt")


# --------------------------------------------------------------------------- errors

_BY_STATUS: dict[int, type[JobyardError]] = {
    400: errors.ValidationFailed,
    401: errors.Unauthorized,
    403: errors.Forbidden,
    404: errors.NotFound,
    409: errors.Conflict,
    422: errors.ValidationFailed,
    429: errors.RateLimited,
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
    if issubclass(cls, errors.RateLimited) and "retry-after" in response.headers:
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


def job_path(job: JobRef, suffix: str = "") -> str:
    job_id = job.id if isinstance(job, Job) else job
    return f"/v1/jobs/{quote(str(job_id), safe='')}{suffix}"


def _clean(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


def _items(response: httpx.Response) -> list[dict[str, Any]]:
    body = response.json()
    return body["items"] if isinstance(body, dict) else body


def _parse_job(response: httpx.Response) -> Job:
    return Job.from_dict(response.json())


def _parse_job_page(response: httpx.Response) -> Page[Job]:
    body = response.json()
    return Page([Job.from_dict(j) for j in body["items"]], body.get("next_cursor"))


class Calls:
    """Request building and answer parsing for every endpoint, shared by both clients."""

    @staticmethod
    def submit(command: str | list[str], **options: Unpack[SubmitOptions]) -> Call[Job]:
        unknown = set(options) - SubmitOptions.__optional_keys__
        if unknown:
            raise TypeError(f"submit() got unexpected options: {', '.join(sorted(unknown))}")
        o: dict[str, Any] = dict(options)
        retry = o.get("retry")
        body = _clean({
            "command": command if isinstance(command, str) else [str(a) for a in command],
            "name": o.get("name"),
            "env": dict(o.get("env") or {}),
            "workdir": o.get("workdir"),
            "resources": {
                "gpus": o.get("gpus", 0), "cpus": o.get("cpus", 1),
                "memory_mb": o.get("memory_mb", 0),
            },
            "instance_type": o.get("instance_type"),
            "priority": o.get("priority", 0),
            "time_limit_s": o.get("time_limit_s"),
            "retry": {"max_retries": retry} if isinstance(retry, int) else retry,
            "tags": list(o.get("tags") or []),
            "webhook": {"url": hook} if isinstance(hook := o.get("webhook"), str) else hook,
            "cluster_id": o.get("cluster_id"),
            "outputs": list(o.get("outputs") or []),
        })
        key = o.get("idempotency_key")
        headers = {"Idempotency-Key": key} if key else None
        return Call("POST", "/v1/jobs", _parse_job, json=body, headers=headers)

    @staticmethod
    def get_job(job: JobRef) -> Call[Job]:
        return Call("GET", job_path(job), _parse_job)

    @staticmethod
    def list_jobs(
        state: str | None, tag: str | None, name: str | None, limit: int, cursor: str | None
    ) -> Call[Page[Job]]:
        params = _clean({"state": state, "tag": tag, "name": name, "limit": limit,
                         "cursor": cursor})
        return Call("GET", "/v1/jobs", _parse_job_page, params=params)

    @staticmethod
    def cancel(job: JobRef) -> Call[Job]:
        return Call("POST", job_path(job, "/cancel"), _parse_job)

    @staticmethod
    def logs(job: JobRef, offset: int, limit: int, tail: int | None) -> Call[LogPage]:
        params = {"tail": tail} if tail is not None else {"offset": offset, "limit": limit}
        return Call("GET", job_path(job, "/logs"), lambda r: LogPage.from_dict(r.json()),
                    params=params)

    @staticmethod
    def me() -> Call[Me]:
        return Call("GET", "/v1/me", lambda r: Me.from_dict(r.json()))

    @staticmethod
    def health() -> Call[dict[str, Any]]:
        return Call("GET", "/healthz", lambda r: r.json())

    @staticmethod
    def create_user(username: str, org: str, is_admin: bool) -> Call[User]:
        body = {"username": username, "org": org, "is_admin": is_admin}
        return Call("POST", "/v1/users", lambda r: User.from_dict(r.json()), json=body)

    @staticmethod
    def list_users() -> Call[list[User]]:
        return Call("GET", "/v1/users", lambda r: [User.from_dict(u) for u in _items(r)])

    @staticmethod
    def create_org(name: str) -> Call[Org]:
        return Call("POST", "/v1/orgs", lambda r: Org.from_dict(r.json()), json={"name": name})

    @staticmethod
    def list_orgs() -> Call[list[Org]]:
        return Call("GET", "/v1/orgs", lambda r: [Org.from_dict(o) for o in _items(r)])

    @staticmethod
    def create_key(name: str | None, username: str | None) -> Call[ApiKey]:
        body = _clean({"name": name, "username": username})
        return Call("POST", "/v1/keys", lambda r: ApiKey.from_dict(r.json()), json=body)

    @staticmethod
    def list_keys(username: str | None) -> Call[list[ApiKey]]:
        return Call("GET", "/v1/keys", lambda r: [ApiKey.from_dict(k) for k in _items(r)],
                    params=_clean({"username": username}))

    @staticmethod
    def revoke_key(key_id: int | str) -> Call[ApiKey]:
        return Call("DELETE", f"/v1/keys/{quote(str(key_id), safe='')}",
                    lambda r: ApiKey.from_dict(r.json()))
