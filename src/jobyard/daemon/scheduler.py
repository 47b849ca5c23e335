"""Admission: which queued jobs start now, on which GPUs.

Jobs are considered by priority (high first), then age. A job that does not fit reserves what it
is waiting for, so later jobs only take what is left over (backfill without starving a big job).
A job on a cluster takes one idle instance of it, or waits; it never touches what is free.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from jobyard.core.models import Resources
from jobyard.core.ports import QueuedJob
from jobyard.daemon.inventory import Allocator


def admit(
    queued: list[QueuedJob], allocator: Allocator, now: float
) -> list[tuple[QueuedJob, dict[str, Any]]]:
    """Allocate resources to the queued jobs that can start now (in queue order)."""
    admitted: list[tuple[QueuedJob, dict[str, Any]]] = []
    free = allocator.free()
    for job in queued:
        if job.next_retry_at and job.next_retry_at > now:
            continue
        if job.cluster_id is not None:  # inside its cluster's reservation: not from ``free``
            on = allocator.try_allocate_on(job.id, job.cluster_id)
            if on is not None:
                admitted.append((job, on))
            continue
        assigned = allocator.try_allocate(job.id, job.resources, free)
        if assigned is not None:
            admitted.append((job, assigned))
            free = _minus(free, job.resources)
        else:
            free = _minus(free, job.resources, clamp=True)  # reserve for the blocked job
    return admitted


def _minus(a: Resources, b: Resources, clamp: bool = False) -> Resources:
    out = Resources(gpus=a.gpus - b.gpus, cpus=a.cpus - b.cpus, memory_mb=a.memory_mb - b.memory_mb)
    if clamp:
        out = replace(
            out, gpus=max(0, out.gpus), cpus=max(0.0, out.cpus), memory_mb=max(0, out.memory_mb)
        )
    return out
