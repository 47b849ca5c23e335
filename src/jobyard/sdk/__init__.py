"""The Python SDK: ``Client``, ``AsyncClient`` and their typed results.

``jobyard.Client`` and ``jobyard.AsyncClient`` are the same classes, imported lazily. Each
resource has one module holding its models, its calls and its blocking and asyncio namespaces:
:mod:`~jobyard.sdk.jobs`, :mod:`~jobyard.sdk.accounts`, :mod:`~jobyard.sdk.volumes`,
:mod:`~jobyard.sdk.operations`, :mod:`~jobyard.sdk.clusters`, :mod:`~jobyard.sdk.endpoints`,
:mod:`~jobyard.sdk.packages`; :mod:`~jobyard.sdk.client` runs them.
"""

from jobyard.errors import ConnectionFailed
from jobyard.sdk.accounts import ApiKey, Me, Org, User
from jobyard.sdk.client import AsyncClient, Client
from jobyard.sdk.clusters import Cluster, ClusterAccepted
from jobyard.sdk.endpoints import Endpoint
from jobyard.sdk.jobs import Event, Job, JobRef, LogLine, LogPage, SubmitOptions
from jobyard.sdk.models import Page
from jobyard.sdk.operations import Operation
from jobyard.sdk.packages import Package, Schedule
from jobyard.sdk.volumes import Volume, VolumeAccepted

__all__ = [
    "ApiKey",
    "AsyncClient",
    "Client",
    "Cluster",
    "ClusterAccepted",
    "ConnectionFailed",
    "Endpoint",
    "Event",
    "Job",
    "JobRef",
    "LogLine",
    "LogPage",
    "Me",
    "Operation",
    "Org",
    "Package",
    "Page",
    "Schedule",
    "SubmitOptions",
    "User",
    "Volume",
    "VolumeAccepted",
]
