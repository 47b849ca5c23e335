"""One exception tree for the whole project, each with a stable code.

    JobyardError                 code                 native HTTP status
    ├── ValidationFailed         INVALID_INPUT        422
    ├── BadRequest               BAD_REQUEST          400
    ├── Unauthorized             UNAUTHORIZED         401
    ├── Forbidden                ACCESS_DENIED        403
    ├── NotFound                 NOT_FOUND            404
    │   ├── JobNotFound          JOB_NOT_FOUND        404
    │   └── EndpointNotFound     ENDPOINT_NOT_FOUND   404
    ├── Conflict                 CONFLICT             409
    │   ├── IllegalTransition    ILLEGAL_TRANSITION   409
    │   └── DeletionProtected    DELETION_PROTECTED   409
    ├── QuotaExceeded            QUOTA_EXCEEDED       409
    ├── Unschedulable            UNSCHEDULABLE        422
    ├── RateLimited              RATE_LIMIT_EXCEEDED  429
    ├── NotSupported             NOT_SUPPORTED        501
    ├── Unavailable              SERVICE_UNAVAILABLE  503 (the database is busy or gone)
    ├── StorageFull              STORAGE_FULL         507 (the disk or database is full)
    ├── ConnectionFailed         CONNECTION_FAILED    (SDK: server unreachable; never an answer)
    └── LaunchError              LAUNCH_FAILED        (infrastructure; never an answer)

Errors say what went wrong, not how a protocol shows it: each dialect maps codes to HTTP
statuses and envelopes in one table in the API layer (``jobyard.api.errors.STATUS``). The SDK
raises these same classes, with the HTTP ``status`` of the answer they came from. A class's
docstring is its default message. An error may say when to try again (``retry_after``).
"""

from __future__ import annotations

import errno
from typing import Any


class JobyardError(Exception):
    """Something went wrong."""

    code = "INTERNAL_ERROR"

    def __init__(
        self,
        message: str | None = None,
        details: dict[str, Any] | None = None,
        *,
        code: str | None = None,
        status: int | None = None,
    ):
        self.message = message or (self.__doc__ or "").strip()
        self.details = details or {}
        if code is not None:  # a code this class stands in for (an SDK that does not know it)
            self.code = code
        # The HTTP status of the answer this error was read from (SDK); None on the server.
        self.status = status
        super().__init__(self.message)

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "details": self.details}

    @property
    def retry_after(self) -> float | None:
        """Seconds to wait before trying again, when the server said."""
        value = self.details.get("retry_after")
        return float(value) if isinstance(value, int | float) else None


class ValidationFailed(JobyardError):
    """The request is invalid."""

    code = "INVALID_INPUT"


class BadRequest(JobyardError):
    """The request cannot be served as asked."""

    code = "BAD_REQUEST"


class Unauthorized(JobyardError):
    """A valid API key is required."""

    code = "UNAUTHORIZED"


class Forbidden(JobyardError):
    """You do not have access to this resource."""

    code = "ACCESS_DENIED"


class NotFound(JobyardError):
    """Not found."""

    code = "NOT_FOUND"


class JobNotFound(NotFound):
    """Job not found."""

    code = "JOB_NOT_FOUND"


class EndpointNotFound(NotFound):
    """Endpoint not found."""

    code = "ENDPOINT_NOT_FOUND"


class Conflict(JobyardError):
    """The resource is not in a state that allows this."""

    code = "CONFLICT"


class IllegalTransition(Conflict):
    """This state change is not allowed."""

    code = "ILLEGAL_TRANSITION"


class DeletionProtected(Conflict):
    """Deletion protection is on."""

    code = "DELETION_PROTECTED"


class QuotaExceeded(JobyardError):
    """The org's quota does not allow this."""

    code = "QUOTA_EXCEEDED"


class Unschedulable(JobyardError):
    """The job asks for more resources than this service can ever give."""

    code = "UNSCHEDULABLE"


class RateLimited(JobyardError):
    """Too many requests."""

    code = "RATE_LIMIT_EXCEEDED"


class NotSupported(JobyardError):
    """This server does not offer that."""

    code = "NOT_SUPPORTED"


class Unavailable(JobyardError):
    """The service is busy; try again shortly."""

    code = "SERVICE_UNAVAILABLE"


class StorageFull(JobyardError):
    """The server's storage is full; nothing was written. Try again once space is freed."""

    code = "STORAGE_FULL"


# How long a client is told to wait after each fault (its Retry-After).
BUSY_RETRY_AFTER_S = 1
FULL_RETRY_AFTER_S = 30


def storage_fault(exc: BaseException) -> StorageFull | None:
    """The :class:`StorageFull` an OS error stands for (ENOSPC, EDQUOT), else None."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return StorageFull(details={"retry_after": FULL_RETRY_AFTER_S})
    return None


class ConnectionFailed(JobyardError):
    """The Jobyard server could not be reached."""

    code = "CONNECTION_FAILED"


class LaunchError(JobyardError):
    """The job could not be started."""

    code = "LAUNCH_FAILED"


class Fenced(Exception):
    """A write of a daemon that no longer leads (its lease passed to another replica):
    refused, nothing of its transaction written. Never an API answer."""


def _tree(root: type[JobyardError]) -> list[type[JobyardError]]:
    return [root, *(c for sub in root.__subclasses__() for c in _tree(sub))]


# Every class by its code: the SDK raises the class an answer's code names.
BY_CODE: dict[str, type[JobyardError]] = {cls.code: cls for cls in _tree(JobyardError)}
