"""The Python SDK: ``Client``, ``AsyncClient`` and their typed results.

``jobyard.Client`` and ``jobyard.AsyncClient`` are the same classes, imported lazily.
"""

from jobyard.errors import ConnectionFailed
from jobyard.sdk.calls import SubmitOptions
from jobyard.sdk.client import AsyncClient, Client
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
