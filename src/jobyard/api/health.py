"""/healthz (no auth) and /metrics (Prometheus text format)."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Request, Response
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from jobyard import __version__
from jobyard.api.deps import services
from jobyard.api.responses import JSON
from jobyard.api.validation import StrictRoute
from jobyard.core.services import ServerInfo
from jobyard.core.states import JobState

router = APIRouter(tags=["service"], route_class=StrictRoute)


@router.get("/healthz")
async def healthz(request: Request) -> JSON:
    """Liveness, this replica's daemon (``daemon``: ``leader``, ``standby`` or ``off``), and
    how this server confines jobs (``isolation``, ``cgroups``, ``namespaces``)."""
    server = services(request).server
    return JSON({"status": "ok", "version": __version__, "daemon": server.role(),
                 **server.enforcement()})


class _StoreCollector:
    """Reads the figures at scrape time, so every replica reports the same truth."""

    def __init__(self, server: ServerInfo):
        self.server = server

    def collect(self) -> Iterator[Metric]:
        jobs = GaugeMetricFamily("jobyard_jobs", "Jobs by state", labels=["state"])
        counts = self.server.counts_by_state()
        for state in JobState:
            jobs.add_metric([str(state)], counts.get(str(state), 0))
        yield jobs
        capacity = GaugeMetricFamily("jobyard_capacity", "Schedulable resources",
                                     labels=["resource"])
        cap = self.server.capacity
        for name in ("gpus", "cpus", "memory_mb"):
            capacity.add_metric([name], getattr(cap, name))
        yield capacity
        scheduler = self.server.scheduler()
        if scheduler is not None:
            gauge = GaugeMetricFamily("jobyard_free", "Unallocated resources", labels=["resource"])
            for name in ("gpus", "cpus", "memory_mb"):
                gauge.add_metric([name], getattr(scheduler.free, name))
            yield gauge
            yield GaugeMetricFamily("jobyard_attempts_running", "Attempts this daemon runs",
                                    value=scheduler.attempts_running)


def metrics_registry(server: ServerInfo) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=True)
    registry.register(_StoreCollector(server))
    return registry


@router.get("/metrics")
def metrics(request: Request) -> Response:
    registry = request.app.state.metrics_registry
    if registry is None:
        registry = request.app.state.metrics_registry = metrics_registry(services(request).server)
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
