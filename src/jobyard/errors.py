"""One exception tree for the whole project, each with a stable code.

    JobyardError                 code            HTTP (native API)
    ├── ValidationFailed         INVALID_INPUT   422
    ├── Unauthorized             UNAUTHORIZED    401
    ├── Forbidden                ACCESS_DENIED   403
    ├── NotFound                 NOT_FOUND       404
    │   └── JobNotFound          JOB_NOT_FOUND   404
    ├── Conflict                 CONFLICT        409
    │   └── IllegalTransition    ILLEGAL_TRANSITION 409
    ├── Unschedulable            UNSCHEDULABLE   422
    ├── RateLimited              RATE_LIMIT_EXCEEDED 429
    ├── ConnectionFailed         CONNECTION_FAILED (SDK: server unreachable; never an HTTP answer)
    └── LaunchError              LAUNCH_FAILED   (infrastructure; never an HTTP answer)

The HTTP status and each dialect's error envelope are decided once per dialect in the API
layer; the SDK raises these same classes. A class's docstring is its default message.
"""

from __future__ import annotations

from typing import Any


class JobyardError(Exception):
    """Something went wrong."""

    code = "INTERNAL_ERROR"
    status = 500

    def __init__(self, message: str | None = None, details: dict[str, Any] | None = None):
        self.message = message or (self.__doc__ or "").strip()
        self.details = details or {}
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}


class ValidationFailed(JobyardError):
    """The request is invalid."""

    code = "INVALID_INPUT"
    status = 422


class Unauthorized(JobyardError):
    """A valid API key is required."""

    code = "UNAUTHORIZED"
    status = 401


class Forbidden(JobyardError):
    """You do not have access to this resource."""

    code = "ACCESS_DENIED"
    status = 403


class NotFound(JobyardError):
    """Not found."""

    code = "NOT_FOUND"
    status = 404


class JobNotFound(NotFound):
    """Job not found."""

    code = "JOB_NOT_FOUND"


class Conflict(JobyardError):
    """The resource is not in a state that allows this."""

    code = "CONFLICT"
    status = 409


class IllegalTransition(Conflict):
    """This state change is not allowed."""

    code = "ILLEGAL_TRANSITION"


class Unschedulable(JobyardError):
    """The job asks for more resources than this service can ever give."""

    code = "UNSCHEDULABLE"
    status = 422


class RateLimited(JobyardError):
    """Too many requests."""

    code = "RATE_LIMIT_EXCEEDED"
    status = 429


class ConnectionFailed(JobyardError):
    """The Jobyard server could not be reached."""

    code = "CONNECTION_FAILED"
    status = 503


class LaunchError(JobyardError):
    """The job could not be started."""

    code = "LAUNCH_FAILED"
    status = 500


BY_CODE: dict[str, type[JobyardError]] = {
    cls.code: cls
    for cls in (
        JobyardError,
        ValidationFailed,
        Unauthorized,
        Forbidden,
        NotFound,
        JobNotFound,
        Conflict,
        IllegalTransition,
        Unschedulable,
        RateLimited,
        ConnectionFailed,
        LaunchError,
    )
}


class QuotaExceeded(JobyardError):
    """The org's quota does not allow this."""

    code = "QUOTA_EXCEEDED"
    status = 409
