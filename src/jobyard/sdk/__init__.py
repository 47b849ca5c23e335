"""The Python SDK: ``Client``, ``AsyncClient`` and their typed results.

``jobyard.Client`` and ``jobyard.AsyncClient`` are the same classes, imported lazily.
"""

from jobyard.sdk.client import AsyncClient, Client, ConnectionFailed, SubmitOptions
from jobyard.sdk.models import ApiKey, Event, Job, LogLine, LogPage, Me, Org, Page, User

__all__ = [
    "ApiKey",
    "AsyncClient",
    "Client",
    "ConnectionFailed",
    "Event",
    "Job",
    "LogLine",
    "LogPage",
    "Me",
    "Org",
    "Page",
    "SubmitOptions",
    "User",
]
