"""What NVML says about the GPUs: the seam the daemon uses to see processes on a GPU.

Only this module imports ``pynvml`` for process queries; tests swap :class:`GpuProbe` for a
fake. With no NVML (no driver, virtual GPUs) there is no probe and nothing is invented.
"""

from __future__ import annotations

import logging
from typing import Protocol

log = logging.getLogger(__name__)


class GpuProbe(Protocol):
    def processes(self, indices: list[int]) -> set[int]:
        """Pids holding a compute or graphics context on these GPUs."""
        ...


class NvmlProbe:
    def __init__(self) -> None:
        import pynvml

        self._nvml = pynvml
        pynvml.nvmlInit()

    def processes(self, indices: list[int]) -> set[int]:
        nvml = self._nvml
        pids: set[int] = set()
        for index in indices:
            handle = nvml.nvmlDeviceGetHandleByIndex(index)
            for query in (nvml.nvmlDeviceGetComputeRunningProcesses,
                          nvml.nvmlDeviceGetGraphicsRunningProcesses):
                try:
                    pids.update(p.pid for p in query(handle))
                except nvml.NVMLError as exc:  # e.g. not supported on this GPU
                    log.debug("NVML process query failed on GPU %s: %s", index, exc)
        return pids


def gpu_probe(gpu_source: str) -> GpuProbe | None:
    """An NVML probe when the inventory's GPUs are real ones."""
    if gpu_source != "nvml":
        return None
    try:
        return NvmlProbe()
    except Exception as exc:  # the driver went away since start-up
        log.warning("NVML unavailable, GPU process checks disabled: %s", exc)
        return None
