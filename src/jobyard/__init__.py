"""Jobyard: a self-hosted job service for GPU and compute work.

The public SDK lives here: ``jobyard.Client`` and ``jobyard.AsyncClient``.
"""

from jobyard.errors import (
    Conflict,
    ConnectionFailed,
    Forbidden,
    JobyardError,
    NotFound,
    RateLimited,
    Unauthorized,
    ValidationFailed,
)

__version__ = "0.1.0"

__all__ = [
    "AsyncClient",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "Forbidden",
    "JobyardError",
    "NotFound",
    "RateLimited",
    "Unauthorized",
    "ValidationFailed",
    "__version__",
]


def __getattr__(name: str) -> object:  # lazy: the server never pays for importing the SDK
    if name in ("Client", "AsyncClient"):
        from jobyard.sdk import client

        return getattr(client, name)
    raise AttributeError(name)
