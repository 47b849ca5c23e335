"""What this machine can run: GPUs (NVML or virtual), CPUs and memory, and who holds what."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from typing import Any

import psutil

from jobyard.config import Config
from jobyard.core.models import Resources

log = logging.getLogger(__name__)


@dataclass
class Inventory:
    gpus: list[int]
    cpus: float
    memory_mb: int
    gpu_source: str  # "nvml", "virtual" or "none"

    @property
    def capacity(self) -> Resources:
        return Resources(gpus=len(self.gpus), cpus=self.cpus, memory_mb=self.memory_mb)


def nvml_gpu_count() -> int:
    """Number of NVIDIA GPUs NVML sees; 0 without a driver or the library."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return int(pynvml.nvmlDeviceGetCount())
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no driver, no GPU, no library: all mean "none here"
        return 0


def detect_inventory(config: Config) -> Inventory:
    if config.virtual_gpus is not None:
        gpus, source = config.virtual_gpus, "virtual"
    else:
        gpus = nvml_gpu_count()
        source = "nvml" if gpus else "none"
    cpus = config.cpus if config.cpus is not None else float(os.cpu_count() or 1)
    memory = config.memory_mb
    if memory is None:
        memory = psutil.virtual_memory().total // (1024 * 1024)
    return Inventory(gpus=list(range(gpus)), cpus=cpus, memory_mb=memory, gpu_source=source)


@dataclass
class Allocator:
    """Hands out the inventory to jobs. Lives in the daemon; rebuilt from the store on start."""

    inventory: Inventory
    held: dict[int, dict[str, Any]] = field(default_factory=dict)

    def free(self) -> Resources:
        used_gpus = sum(len(a["gpus"]) for a in self.held.values())
        used_cpus = sum(a["cpus"] for a in self.held.values())
        used_mem = sum(a["memory_mb"] for a in self.held.values())
        inv = self.inventory
        return Resources(
            gpus=len(inv.gpus) - used_gpus,
            cpus=round(inv.cpus - used_cpus, 6),
            memory_mb=inv.memory_mb - used_mem,
        )

    def try_allocate(self, job_id: int, want: Resources, free: Resources) -> dict[str, Any] | None:
        if not want.fits_in(free):
            return None
        taken = {g for a in self.held.values() for g in a["gpus"]}
        gpus = [g for g in self.inventory.gpus if g not in taken][: want.gpus]
        assigned = {"gpus": gpus, "cpus": want.cpus, "memory_mb": want.memory_mb}
        self.held[job_id] = assigned
        return assigned

    def restore(self, job_id: int, assigned: dict[str, Any] | None) -> None:
        if assigned is not None:
            self.held[job_id] = assigned

    def release(self, job_id: int) -> None:
        self.held.pop(job_id, None)
