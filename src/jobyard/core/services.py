"""The API's whole view of the server: one service per resource, built once.

Routes of every dialect (and the dashboard) receive :class:`Services` and nothing else of the
server: no store, no daemon, no executor. Every rule (ownership, transitions, quotas) is in
the service a route calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from jobyard.config import Config
from jobyard.core.accounts import AccountService
from jobyard.core.clusters import ClusterService
from jobyard.core.cost import Prices
from jobyard.core.endpoints import EndpointService
from jobyard.core.files import JobFileService
from jobyard.core.jobs import JobService
from jobyard.core.models import Resources
from jobyard.core.operations import OperationService
from jobyard.core.packages import PackageService
from jobyard.core.telemetry import TelemetryService
from jobyard.core.tokens import Signer
from jobyard.core.volumes import VolumeService


@dataclass(frozen=True, slots=True)
class SchedulerView:
    """What this process's daemon holds right now (only the leader's is meaningful)."""

    free: Resources
    attempts_running: int


@dataclass(frozen=True, slots=True)
class ServerInfo:
    capacity: Resources  # what jobs may ever ask for on this server
    counts_by_state: Callable[[], dict[str, int]]  # jobs by state, read at call time
    scheduler: Callable[[], SchedulerView | None]  # None: this process runs no daemon
    # How jobs are confined (the executor's word): {"isolation", "cgroups", "cgroups_detail"}.
    enforcement: Callable[[], dict[str, Any]] = dict
    # This replica's daemon: "leader", "standby" (another replica leads) or "off" (none).
    role: Callable[[], str] = lambda: "off"


@dataclass(frozen=True, slots=True)
class Services:
    config: Config
    jobs: JobService
    files: JobFileService
    telemetry: TelemetryService
    accounts: AccountService
    clusters: ClusterService
    volumes: VolumeService
    operations: OperationService
    endpoints: EndpointService
    packages: PackageService
    signer: Signer
    prices: Prices
    server: ServerInfo
    # Store reads are cheap enough to run on the event loop (SQLite in WAL mode); otherwise
    # async routes run them in a thread (``api/deps.py``).
    reads_inline: bool = False
